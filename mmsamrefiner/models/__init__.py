# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Trainable models for mmengine's Runner: SAMRefiner++'s IoU adaption."""
from .iou_adaption_model import IoUAdaptionModel

__all__ = ['IoUAdaptionModel']
