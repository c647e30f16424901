# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask-quality measures."""
from .functional import boundary_iou, mask_boundary, mask_iou

__all__ = ['mask_iou', 'boundary_iou', 'mask_boundary']
