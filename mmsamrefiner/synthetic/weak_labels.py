# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Coarse pseudo-labels of the kinds weak supervision produces, made from true
masks (``tools/benchmark_pseudo_labels.py``).

* ``'box'``: a box annotation turned into a mask: each mask's bounding box,
  filled;
* ``'cam'``: CAM-like masks: each mask dilated, eroded or blobby (its boundary
  moved in and out by a smooth random field), one of the three drawn per mask;
* label maps: instance masks painted into an (H, W) class map in order (later
  masks over earlier ones), for semantic segmentation; a coarse label map is
  the map of ``'cam'`` masks.

Everything is seeded; masks are (H, W) or (N, H, W) bool in the image's pixel
frame.
"""
import numpy as np

from .defects import make_coarse_mask

#: Instance pseudo-label kinds of :func:`make_weak_masks`.
WEAK_KINDS = ('box', 'cam')

#: The defects a CAM-like mask is drawn from (:mod:`.defects`); ``'jitter'``
#: is the blobby one.
CAM_DEFECTS = ('dilate', 'erode', 'jitter')


def box_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the bounding box of ``mask`` filled (empty stays empty)."""
    return make_coarse_mask(mask, 'box')


def cam_mask(mask: np.ndarray, rng: np.random.Generator, amount: int = 5) -> np.ndarray:
    """(H, W) bool: ``mask`` dilated or eroded by ``amount`` pixels, or its
    boundary moved in and out by up to ``amount`` pixels along a smooth random
    field, the three equally likely."""
    defect = CAM_DEFECTS[int(rng.integers(len(CAM_DEFECTS)))]
    return make_coarse_mask(mask, defect, amount, rng)


def make_weak_masks(masks: np.ndarray, kind: str, seed: int = 0,
                    amount: int = 5) -> np.ndarray:
    """(N, H, W) bool pseudo-labels of kind ``kind`` (:data:`WEAK_KINDS`) for
    the (N, H, W) bool true ``masks``; ``amount``: the CAM-like defects' size in
    pixels."""
    if kind not in WEAK_KINDS:
        raise ValueError(f'unknown pseudo-label kind {kind!r}; expected one of {WEAK_KINDS}')
    if masks.ndim != 3:
        raise ValueError(f'masks must be (N, H, W), got shape {masks.shape}')
    rng = np.random.default_rng(seed)
    if kind == 'box':
        out = [box_mask(mask) for mask in masks]
    else:
        out = [cam_mask(mask, rng, amount) for mask in masks]
    return np.stack(out) if out else masks.astype(bool)


def paint_label_map(masks: np.ndarray, labels: np.ndarray,
                    background: int = 0) -> np.ndarray:
    """(H, W) uint8 class map of (N, H, W) bool ``masks`` with (N,) class ids
    ``labels`` (1..255), painted in order: a later mask covers an earlier one;
    pixels of no mask are ``background``."""
    if masks.ndim != 3 or len(masks) != len(labels):
        raise ValueError(f'expected (N, H, W) masks and N labels, got masks of shape '
                         f'{masks.shape} and {len(labels)} labels')
    label_map = np.full(masks.shape[1:], background, np.uint8)
    for mask, label in zip(masks, labels):
        label_map[mask] = label
    return label_map


def make_weak_label_map(masks: np.ndarray, labels: np.ndarray, seed: int = 0,
                        amount: int = 5, kind: str = 'cam') -> np.ndarray:
    """(H, W) uint8 coarse class map: the ``kind`` pseudo-labels of ``masks``
    (:func:`make_weak_masks`) painted in order (:func:`paint_label_map`)."""
    return paint_label_map(make_weak_masks(masks, kind, seed, amount), labels)
