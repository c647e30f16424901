# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The SAMRefiner algorithm: torch/numpy only, nothing of mmdet or mmseg."""
from .iou_adapter import IoUAdapter, margin_ranking_loss
from .prompts import PromptMiner, Prompts, masks_to_boxes
from .refiner import ImageEmbedding, RefineResult, SAMRefiner
from .sam import (SAM_ARCHS, SAM_CHECKPOINT_URLS, build_sam, build_sam_model,
                  read_state_dict)
from .stm import merge_instances, split_then_merge

__all__ = [
    'SAMRefiner', 'RefineResult', 'IoUAdapter', 'margin_ranking_loss', 'ImageEmbedding', 'Prompts', 'PromptMiner',
    'masks_to_boxes', 'build_sam', 'build_sam_model', 'read_state_dict',
    'SAM_ARCHS', 'SAM_CHECKPOINT_URLS', 'split_then_merge', 'merge_instances'
]
