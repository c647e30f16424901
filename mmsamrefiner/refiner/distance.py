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

    The whole-image form of :func:`distance_box_crops` (its box crops pasted
    into (N, H, W) maps).

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
    for i in np.flatnonzero(masks.reshape(n, -1).any(1)):
        x1, y1, x2, y2 = boxes[i]
        dist[i, y1:y2 + 1, x1:x2 + 1] = crops[i, :y2 - y1 + 1, :x2 - x1 + 1]
    return (dist, peaks) if return_peaks else dist


def distance_box_crops(masks: np.ndarray, boxes: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`distance_to_background` on each mask's box only, never the image.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int xyxy, inclusive tight boxes.

    Returns:
        ``(crops, peaks)``: (N, hc, wc) float32 distances of each box at the
        top-left (hc, wc: the largest box; zero beyond each box), and (N, 2)
        int64 xy of each mask's first maximum (image frame, row-major order).
    """
    n, height, width = masks.shape
    if n == 0:
        return np.zeros((0, 1, 1), np.float32), np.zeros((0, 2), np.int64)
    crop_h = int((boxes[:, 3] - boxes[:, 1]).max()) + 1
    crop_w = int((boxes[:, 2] - boxes[:, 0]).max()) + 1
    crops = np.zeros((n, crop_h, crop_w), np.float32)
    peaks = np.zeros((n, 2), np.int64)
    for i in np.flatnonzero(masks.reshape(n, -1).any(1)):
        x1, y1, x2, y2 = boxes[i]
        ya, yb = max(y1 - 1, 0), min(y2 + 2, height)
        xa, xb = max(x1 - 1, 0), min(x2 + 2, width)
        ring_dist = _edt(masks[i, ya:yb, xa:xb].view(np.uint8))
        box_dist = ring_dist[y1 - ya:y2 + 1 - ya, x1 - xa:x2 + 1 - xa]
        crops[i, :y2 - y1 + 1, :x2 - x1 + 1] = box_dist
        flat = int(box_dist.argmax())  # all mask pixels lie in the box
        peaks[i] = (x1 + flat % box_dist.shape[1], y1 + flat // box_dist.shape[1])
    return crops, peaks


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
