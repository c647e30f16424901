# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask-quality measures on numpy arrays."""
import numpy as np


def mask_iou(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of paired (N, H, W) bool masks: (N,) float64; 1 where both are empty."""
    pred, target = pred.reshape(len(pred), -1), target.reshape(len(target), -1)
    inter = (pred & target).sum(1)
    union = (pred | target).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)
