# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""mmsamrefiner: SAMRefiner (ICLR 2025) for MMDetection and MMSegmentation."""
from .refiner import (ImageEmbedding, PromptMiner, Prompts, RefineResult,
                      SAMRefiner, build_sam, merge_instances, split_then_merge)
from .datasets import RefineCoarseMasks
from .engine import SAMRefinerHook
from .evaluation import MaskRefinementMetric
from .version import __version__, version_info

__all__ = [
    '__version__', 'version_info', 'SAMRefiner', 'RefineResult', 'Prompts',
    'PromptMiner', 'ImageEmbedding', 'build_sam', 'split_then_merge',
    'merge_instances', 'SAMRefinerHook', 'RefineCoarseMasks',
    'MaskRefinementMetric'
]
