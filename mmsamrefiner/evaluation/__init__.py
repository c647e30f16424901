# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask-quality measures: functions, collection scoring, and an MM metric."""
from mmsamrefiner.utils.masks import match_masks

from .collection_metrics import evaluate_instances, evaluate_label_maps, evaluate_mask_pairs
from .functional import boundary_iou, mask_boundary, mask_iou
from .metrics import IoURankingMetric, MaskRefinementMetric

__all__ = [
    'mask_iou', 'boundary_iou', 'mask_boundary', 'evaluate_instances',
    'evaluate_label_maps', 'evaluate_mask_pairs', 'match_masks', 'MaskRefinementMetric',
    'IoURankingMetric'
]
