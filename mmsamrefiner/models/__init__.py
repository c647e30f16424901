# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Trainable models for mmengine's Runner: SAMRefiner++'s IoU adapter."""
from .iou_adapter_model import IoUAdapterModel

__all__ = ['IoUAdapterModel']
