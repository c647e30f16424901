# Copyright (c) mmsamrefiner contributors. All rights reserved.
from .iou_ranking_metric import IoURankingMetric
from .mask_refinement_metric import MaskRefinementMetric

__all__ = ['MaskRefinementMetric', 'IoURankingMetric']
