# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Coarse masks with the defects pseudo-labels have."""
import cv2
import numpy as np

DEFECTS = ('dilate', 'erode', 'box', 'lowres')


def _kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def make_coarse_mask(mask: np.ndarray, defect: str, amount: int = 4) -> np.ndarray:
    """One (H, W) bool mask spoiled by ``defect`` (see :data:`DEFECTS`)."""
    m = mask.astype(np.uint8)
    if defect == 'dilate':
        out = cv2.dilate(m, _kernel(amount))
    elif defect == 'erode':
        out = np.zeros_like(m)
        for radius in range(amount, 0, -1):  # thin objects: erode less
            out = cv2.erode(m, _kernel(radius))
            if out.any():
                break
    elif defect == 'box':
        ys, xs = np.nonzero(m)
        out = np.zeros_like(m)
        out[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = 1
    elif defect == 'lowres':  # Mask R-CNN style: 28x28 in the box, upsampled
        ys, xs = np.nonzero(m)
        y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        small = cv2.resize(m[y1:y2, x1:x2].astype(np.float32), (28, 28),
                           interpolation=cv2.INTER_AREA)
        out = np.zeros_like(m)
        out[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1),
                                       interpolation=cv2.INTER_LINEAR) > 0.5
    else:
        raise ValueError(f'unknown defect {defect!r}; expected one of {DEFECTS}')
    return out.astype(bool)


def make_coarse_masks(masks: np.ndarray, seed: int = 0, amount: int = 4) -> np.ndarray:
    """(N, H, W) bool coarse masks, each with a defect drawn from :data:`DEFECTS`."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(DEFECTS, len(masks))
    return np.stack([make_coarse_mask(m, k, amount) for m, k in zip(masks, kinds)]) \
        if len(masks) else masks.copy()
