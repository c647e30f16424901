# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Whole-image distance maps from the refiner's box-restricted transform."""
import numpy as np

from mmsamrefiner.refiner.distance import distance_box_crops


def distance_to_background(masks: np.ndarray, boxes: np.ndarray,
                           return_peaks: bool = False):
    """Distance of every foreground pixel to the nearest background pixel.

    The whole-image form of
    :func:`~mmsamrefiner.refiner.distance.distance_box_crops` (its box crops
    pasted into (N, H, W) maps), for checking it.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int xyxy, inclusive pixel indices of each mask's tight box
            (ignored for empty masks).
        return_peaks: also return where each distance map peaks.

    Returns:
        (N, H, W) float32; 0 on background pixels.  With ``return_peaks``,
        also (N, 2) int64 xy of each map's first maximum in row-major order
        ((0, 0) for empty masks).
    """
    n, height, width = masks.shape
    dist = np.zeros((n, height, width), np.float32)
    crops, peaks = distance_box_crops(masks, boxes)
    for i in range(n):  # an empty mask's crop is all zero
        x1, y1, x2, y2 = boxes[i]
        dist[i, y1:y2 + 1, x1:x2 + 1] = crops[i, :y2 - y1 + 1, :x2 - x1 + 1]
    return (dist, peaks) if return_peaks else dist
