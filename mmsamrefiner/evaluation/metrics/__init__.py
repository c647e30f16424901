# Copyright (c) mmsamrefiner contributors. All rights reserved.
from .mask_refinement_metric import MaskRefinementMetric

__all__ = ['MaskRefinementMetric']
