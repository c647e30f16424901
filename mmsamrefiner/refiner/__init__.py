# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The SAMRefiner algorithm, standing alone.

It imports torch, numpy, OpenCV, Pillow, ``segment_anything`` and mmengine's
registry (for ``dict(type=...)`` configs); nothing of mmcv, mmdet, mmseg or
pycocotools, and not mmengine's runner (its ``CheckpointLoader`` is imported
only to read a checkpoint URL).  The HQ-SAM and SAM 2 packages are imported
when such a model is built.  Of this package it imports only
:mod:`mmsamrefiner.utils` and :mod:`mmsamrefiner.registry`.

Building and running are apart: :mod:`.sam` builds the models of every family
and reads checkpoints; :mod:`.backends` run a built model, one adapter per
family.
"""
from .iou_adapter import IoUAdapter, margin_ranking_loss
from .prompts import PromptMiner, Prompts, masks_to_boxes
from .refiner import ImageEmbedding, RefineResult, SAMRefiner, SemanticRefineResult
from .sam import SAM_ARCHS, SAM_CHECKPOINT_URLS, build_sam, build_sam_model, read_state_dict
from .stm import merge_instances, residual_fragments, split_then_merge

__all__ = [
    'SAMRefiner', 'RefineResult', 'SemanticRefineResult', 'IoUAdapter',
    'margin_ranking_loss', 'ImageEmbedding', 'Prompts', 'PromptMiner',
    'masks_to_boxes', 'build_sam', 'build_sam_model', 'read_state_dict',
    'SAM_ARCHS', 'SAM_CHECKPOINT_URLS', 'split_then_merge', 'merge_instances',
    'residual_fragments'
]
