# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask-quality measures."""
from .functional import mask_iou

__all__ = ['mask_iou']
