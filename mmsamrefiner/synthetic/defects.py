# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Coarse masks with the defects pseudo-labels have.

Each defect spoils one (H, W) bool mask in one way; ``amount`` is its size in
pixels (dilation radius, boundary jitter, ...).  All are seeded.
"""
from typing import Optional

import cv2
import numpy as np

DEFECTS = ('dilate', 'erode', 'jitter', 'simplify', 'holes', 'missing',
           'fragments', 'lowres', 'box')


def _kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def _bbox(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def _smooth_noise(rng, shape, scale: float) -> np.ndarray:
    """A smooth random field in [-1, 1] with features ~``scale`` pixels."""
    small = rng.uniform(-1, 1, (max(2, int(shape[0] / scale)), max(2, int(shape[1] / scale))))
    return cv2.resize(small.astype(np.float32), (shape[1], shape[0]),
                      interpolation=cv2.INTER_CUBIC)


def make_coarse_mask(mask: np.ndarray, defect: str, amount: int = 4,
                     rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """One (H, W) bool mask spoiled by ``defect`` (see :data:`DEFECTS`)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    m = mask.astype(np.uint8)
    if not m.any():
        return mask.astype(bool)
    y1, y2, x1, x2 = _bbox(m)
    if defect == 'dilate':
        out = cv2.dilate(m, _kernel(amount))
    elif defect == 'erode':
        out = np.zeros_like(m)
        for radius in range(amount, 0, -1):  # thin objects: erode less
            out = cv2.erode(m, _kernel(radius))
            if out.any():
                break
    elif defect == 'jitter':  # boundary moved in and out by up to `amount` px
        dist_in = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        dist_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
        signed = np.where(m > 0, dist_in, -dist_out)
        out = signed > amount * _smooth_noise(rng, m.shape, 3 * amount + 4)
    elif defect == 'simplify':  # a coarse polygon through the outline
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        out = np.zeros_like(m)
        for contour in contours:
            poly = cv2.approxPolyDP(contour, 1.5 * amount, True)
            cv2.fillPoly(out, [poly], 1)
    elif defect == 'holes':
        out = m.copy()
        for _ in range(int(rng.integers(2, 5))):
            ys, xs = np.nonzero(out)
            if len(ys) == 0:
                break
            i = int(rng.integers(len(ys)))
            cv2.circle(out, (int(xs[i]), int(ys[i])), int(amount * rng.uniform(1, 2)), 0, -1)
    elif defect == 'missing':  # a side of the object cut off
        yy, xx = np.mgrid[:m.shape[0], :m.shape[1]]
        angle = rng.uniform(0, 2 * np.pi)
        cy, cx = (y1 + y2) / 2, (x1 + x2) / 2
        proj = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        extent = max(y2 - y1, x2 - x1) / 2
        out = m & (proj < extent * rng.uniform(0.1, 0.5))
    elif defect == 'fragments':  # spurious blobs near the object
        out = m.copy()
        height, width = m.shape
        for _ in range(int(rng.integers(1, 4))):
            cx = int(np.clip(rng.uniform(x1 - 20, x2 + 20), 0, width - 1))
            cy = int(np.clip(rng.uniform(y1 - 20, y2 + 20), 0, height - 1))
            cv2.circle(out, (cx, cy), int(amount * rng.uniform(1, 2.5)), 1, -1)
    elif defect == 'lowres':  # Mask R-CNN style: 28x28 in the box, upsampled
        small = cv2.resize(m[y1:y2, x1:x2].astype(np.float32), (28, 28),
                           interpolation=cv2.INTER_AREA)
        out = np.zeros_like(m)
        out[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1),
                                       interpolation=cv2.INTER_LINEAR) > 0.5
    elif defect == 'box':
        out = np.zeros_like(m)
        out[y1:y2, x1:x2] = 1
    else:
        raise ValueError(f'unknown defect {defect!r}; expected one of {DEFECTS}')
    out = out.astype(bool)
    return out if out.any() else mask.astype(bool)


def make_coarse_masks(masks: np.ndarray, seed: int = 0, amount: int = 4,
                      defect: Optional[str] = None) -> np.ndarray:
    """(N, H, W) bool coarse masks, each with ``defect`` (default: drawn at
    random from :data:`DEFECTS`)."""
    rng = np.random.default_rng(seed)
    if len(masks) == 0:
        return masks.astype(bool)
    kinds = [defect] * len(masks) if defect else rng.choice(DEFECTS, len(masks))
    return np.stack([make_coarse_mask(m, k, amount, rng) for m, k in zip(masks, kinds)])
