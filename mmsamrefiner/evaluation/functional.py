# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask-quality measures on numpy arrays (original image frame, bool masks)."""
import cv2
import numpy as np


def mask_iou(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of paired (N, H, W) bool masks: (N,) float64; 1 where both are empty."""
    pred, target = pred.reshape(len(pred), -1), target.reshape(len(target), -1)
    inter = (pred & target).sum(1)
    union = (pred | target).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def mask_boundary(masks: np.ndarray, dilation_ratio: float = 0.02) -> np.ndarray:
    """Inner boundary bands of (N, H, W) bool masks (Cheng et al., 2021).

    The band is the mask minus its erosion by ``d = max(1, round(ratio *
    diagonal))`` pixels (a 3x3 erosion repeated ``d`` times, the image border
    counting as background).

    Returns:
        (N, H, W) bool.
    """
    n, height, width = masks.shape
    distance = max(1, int(round(dilation_ratio * np.hypot(height, width))))
    kernel = np.ones((3, 3), np.uint8)
    bands = np.zeros_like(masks, dtype=bool)
    for i in range(n):
        padded = cv2.copyMakeBorder(masks[i].astype(np.uint8), 1, 1, 1, 1,
                                    cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, kernel, iterations=distance)[1:-1, 1:-1]
        bands[i] = masks[i] & ~eroded.astype(bool)
    return bands


def boundary_iou(pred: np.ndarray, target: np.ndarray,
                 dilation_ratio: float = 0.02) -> np.ndarray:
    """Boundary IoU of paired (N, H, W) bool masks: (N,) float64.

    IoU of the two masks' inner boundary bands (:func:`mask_boundary`); 1 where
    both bands are empty.
    """
    return mask_iou(mask_boundary(pred, dilation_ratio),
                    mask_boundary(target, dilation_ratio))
