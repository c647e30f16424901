# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""mmsamrefiner: SAMRefiner (ICLR 2025) for MMDetection and MMSegmentation."""
from .refiner import (ImageEmbedding, IoUAdapter, PromptMiner, Prompts,
                      RefineResult, SAMRefiner, build_sam, merge_instances,
                      split_then_merge)
from .datasets import (CocoCoarseMaskDataset, LabelMapCoarseMaskDataset,
                       RefineCoarseMasks)
from .engine import SAMRefinerHook, SaveIoUAdapterHook
from .evaluation import IoURankingMetric, MaskRefinementMetric
from .models import IoUAdaptionModel
from .version import __version__, version_info

__all__ = [
    '__version__', 'version_info', 'SAMRefiner', 'RefineResult', 'Prompts',
    'PromptMiner', 'ImageEmbedding', 'build_sam', 'split_then_merge',
    'merge_instances', 'SAMRefinerHook', 'RefineCoarseMasks',
    'MaskRefinementMetric', 'IoUAdapter', 'IoUAdaptionModel', 'IoURankingMetric',
    'SaveIoUAdapterHook', 'CocoCoarseMaskDataset', 'LabelMapCoarseMaskDataset'
]
