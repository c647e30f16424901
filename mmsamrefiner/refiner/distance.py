# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Exact Euclidean distance transforms of binary masks, restricted to boxes.

Both transforms work on each mask's bounding box only (plus a one-pixel ring of
background where the box does not touch the image border), which gives the same
values as a transform of the whole image, at a fraction of the cost.  Pixels
outside the image are *not* background, as in ``scipy.ndimage``'s and the
reference's transforms.  OpenCV's ``DIST_L2`` with ``DIST_MASK_PRECISE`` is an
exact Euclidean transform (Felzenszwalb & Huttenlocher).
"""
from typing import Tuple

import cv2
import numpy as np


def _edt(binary: np.ndarray) -> np.ndarray:
    """Distance of each non-zero pixel of a 2-D uint8 array to the nearest zero.

    Squared distances between pixels are integers, so they are rounded back to
    them: mirror-image pixels then get bit-identical distances and ties are
    broken by position alone (first in row-major order), not by float noise.
    """
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(np.square(dist)))


def distance_to_background(masks: np.ndarray, boxes: np.ndarray,
                           return_peaks: bool = False):
    """Distance of every foreground pixel to the nearest background pixel.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int xyxy, inclusive pixel indices of each mask's tight box
            (ignored for empty masks).
        return_peaks: also return where each distance map peaks.

    Returns:
        (N, H, W) float32; 0 on background pixels.  With ``return_peaks``,
        also (N, 2) int64 xy of each map's first maximum in row-major order
        (found on the box crop, whose row-major order is the image's; (0, 0)
        for empty masks).
    """
    n, height, width = masks.shape
    dist = np.zeros((n, height, width), np.float32)
    peaks = np.zeros((n, 2), np.int64)
    for i in np.flatnonzero(masks.reshape(n, -1).any(1)):
        x1, y1, x2, y2 = boxes[i]
        # one ring of background around the box, where it lies in the image
        ya, yb = max(y1 - 1, 0), min(y2 + 2, height)
        xa, xb = max(x1 - 1, 0), min(x2 + 2, width)
        crop = masks[i, ya:yb, xa:xb].view(np.uint8)
        crop_dist = _edt(crop)
        dist[i, ya:yb, xa:xb] = crop_dist
        flat = int(crop_dist.argmax())
        peaks[i] = (xa + flat % crop_dist.shape[1], ya + flat // crop_dist.shape[1])
    return (dist, peaks) if return_peaks else dist


def farthest_background_in_box(masks: np.ndarray, boxes: np.ndarray
                               ) -> Tuple[np.ndarray, np.ndarray]:
    """The background pixel inside each mask's box farthest from the mask.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int xyxy, inclusive pixel indices of the tight boxes.

    Returns:
        ``(points, found)``: (N, 2) int64 xy of the first farthest pixel in
        row-major order, and (N,) bool, False where the box holds no background
        pixel (a filled rectangle) or the mask is empty; those points are (0, 0).
    """
    n = masks.shape[0]
    points = np.zeros((n, 2), np.int64)
    found = np.zeros(n, bool)
    for i in np.flatnonzero(masks.reshape(n, -1).any(1)):
        x1, y1, x2, y2 = boxes[i]
        crop = (~masks[i, y1:y2 + 1, x1:x2 + 1]).view(np.uint8)
        dist = _edt(crop)
        flat = int(dist.argmax())
        if dist.flat[flat] > 0:
            points[i] = (x1 + flat % dist.shape[1], y1 + flat // dist.shape[1])
            found[i] = True
    return points, found
