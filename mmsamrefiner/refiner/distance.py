# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Exact Euclidean distance transforms of binary masks, restricted to boxes.

Both transforms work on each mask's bounding box only (plus a one-pixel ring of
background where the box does not touch the image border), which gives the same
values as a transform of the whole image, at a fraction of the cost.  Pixels
outside the image are *not* background, as in ``scipy.ndimage``'s and the
reference's transforms.  OpenCV's ``DIST_L2`` with ``DIST_MASK_PRECISE`` is an
exact Euclidean transform (Felzenszwalb & Huttenlocher).
"""
from functools import lru_cache
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
from torch import Tensor


def exact_distance(binary: np.ndarray) -> np.ndarray:
    """Distance of each non-zero pixel of a 2-D uint8 array to the nearest zero.

    Squared distances between pixels are integers, so they are rounded back to
    them: mirror-image pixels then get bit-identical distances and ties are
    broken by position alone (first in row-major order), not by float noise.
    """
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(np.square(dist)))


def distance_box_crops(masks: np.ndarray, boxes: np.ndarray,
                       indices: Optional[np.ndarray] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Distance of every foreground pixel to the nearest background pixel, on
    each mask's box only, never the image.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int xyxy, inclusive tight boxes.
        indices: (K,) int, the masks to transform (default: all); the masks
            are read in place, never copied.

    Returns:
        ``(crops, peaks)``: (K, hc, wc) float32 distances of each box at the
        top-left (hc, wc: the largest of those boxes; zero beyond each box),
        and (K, 2) int64 xy of each mask's first maximum (image frame,
        row-major order; (0, 0) for an empty mask).
    """
    n, height, width = masks.shape
    if indices is None:
        indices = np.arange(n)
    if len(indices) == 0:
        return np.zeros((0, 1, 1), np.float32), np.zeros((0, 2), np.int64)
    chosen = boxes[indices]
    crop_h = int((chosen[:, 3] - chosen[:, 1]).max()) + 1
    crop_w = int((chosen[:, 2] - chosen[:, 0]).max()) + 1
    crops = np.zeros((len(indices), crop_h, crop_w), np.float32)
    peaks = np.zeros((len(indices), 2), np.int64)
    for k, i in enumerate(indices):
        x1, y1, x2, y2 = chosen[k]
        ya, yb = max(y1 - 1, 0), min(y2 + 2, height)
        xa, xb = max(x1 - 1, 0), min(x2 + 2, width)
        ring_dist = exact_distance(masks[i, ya:yb, xa:xb].view(np.uint8))
        box_dist = ring_dist[y1 - ya:y2 + 1 - ya, x1 - xa:x2 + 1 - xa]
        crops[k, :y2 - y1 + 1, :x2 - x1 + 1] = box_dist
        flat = int(box_dist.argmax())  # all mask pixels lie in the box
        if box_dist.flat[flat] > 0:  # else an empty mask
            peaks[k] = (x1 + flat % box_dist.shape[1], y1 + flat // box_dist.shape[1])
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
    for i in range(n):
        x1, y1, x2, y2 = boxes[i]
        box = masks[i, y1:y2 + 1, x1:x2 + 1]
        if not box.any():  # an empty mask (its box is (0, 0, 0, 0))
            continue
        dist = exact_distance((~box).view(np.uint8))
        flat = int(dist.argmax())
        if dist.flat[flat] > 0:
            points[i] = (x1 + flat % dist.shape[1], y1 + flat // dist.shape[1])
            found[i] = True
    return points, found


# -- the same transforms in torch, batched over box crops, on the masks' device --

#: The most elements of one block of the per-row minimum, by device type:
#: cache-sized on the CPU (3x faster than 64 MB blocks there), 64 MB of int32
#: elsewhere (fewer kernel launches).
MAX_BLOCK_ELEMENTS = dict(cpu=1 << 18, other=1 << 24)


def squared_distance_to_features(features: Tensor,
                                 max_block_elements: Optional[int] = None) -> Tensor:
    """Exact squared Euclidean distance from every pixel to the nearest True
    pixel of its own map, in integers.

    Separable: per column, the nearest True row above and below each pixel
    come from running maxima / minima of row indices (``cummax`` /
    ``cummin``); then per row the minimum over ``x'`` of
    ``(x - x')^2 + g(x')^2`` (``g``: the column distance), by brute force
    over the shorter side of the maps, in blocks of at most
    ``max_block_elements`` so that memory stays bounded whatever the size.
    Time is O(K h w min(h, w)).  Pixels outside the maps are not True.

    Args:
        features: (K, h, w) bool.
        max_block_elements: the most elements of one (rows, w, w') block of
            the per-row minimum (default: :data:`MAX_BLOCK_ELEMENTS` of the
            features' device type).

    Returns:
        (K, h, w) int32 (int64 for sides over 10,000), the squared
        distances; ``(h + w) ** 2`` or more in a map without a True pixel.
    """
    count, height, width = features.shape
    if width > height:  # the brute-force minimum runs along the shorter side
        return squared_distance_to_features(features.transpose(1, 2),
                                            max_block_elements).transpose(1, 2)
    device = features.device
    if max_block_elements is None:
        max_block_elements = MAX_BLOCK_ELEMENTS.get(device.type, MAX_BLOCK_ELEMENTS['other'])
    far = height + width  # more than any distance within a map
    rows = torch.arange(height, device=device)[:, None]
    above = torch.where(features, rows, -far).cummax(1).values
    below = torch.where(features, rows, height + far).flip(1).cummin(1).values.flip(1)
    column = torch.minimum(rows - above, below - rows)  # (K, h, w), at most h + far
    dtype = torch.int32 if max(height, width) <= 10000 else torch.int64
    column_sq = column.to(dtype).square_().reshape(count * height, width)
    xs = torch.arange(width, device=device)
    offset_sq = (xs[:, None] - xs[None, :]).square_().to(dtype)  # (x, x')
    result = torch.empty_like(column_sq)
    block = max(1, min(width, max_block_elements // width))  # x' per block
    chunk = max(1, max_block_elements // (width * block))  # rows per chunk
    for start in range(0, count * height, chunk):
        part = column_sq[start:start + chunk]
        best = None
        for first in range(0, width, block):
            candidates = part[:, None, first:first + block] + offset_sq[:, first:first + block]
            nearest = candidates.amin(2)
            best = nearest if best is None else torch.minimum(best, nearest)
        result[start:start + chunk] = best
    return result.reshape(count, height, width)


def _no_background_distance(height: int, width: int) -> float:
    """What :func:`exact_distance` gives on an (H, W) image without
    background: a large finite value of OpenCV's, which depends on the size
    and OpenCV's thread count (they choose between its two implementations)."""
    return _opencv_no_background(height, width, cv2.getNumThreads())


@lru_cache(maxsize=1024)
def _opencv_no_background(height: int, width: int, threads: int) -> float:
    return float(exact_distance(np.ones((height, width), np.uint8))[0, 0])


def _sqrt_of_squares(squares: Tensor, far: int, no_feature: float) -> Tensor:
    """float32 ``sqrt`` of (K, h, w) integer squared distances, rounded once
    (taken in float64: correctly rounded on every device), ``no_feature``
    where they are ``far ** 2`` or more (a map without features)."""
    roots = squares.double().sqrt_().float()
    return roots.masked_fill_(squares >= far * far, no_feature)


def _crop_bounds(boxes: Tensor, indices: Optional[Tensor],
                 crop_size: Optional[Tuple[int, int]]
                 ) -> Tuple[Tensor, Tensor, Tuple[int, int], Tensor]:
    """``(indices, boxes[indices], (hc, wc), inside)``: the (K,) masks, their
    (K, 4) boxes, the crop size (the largest box; read from the device unless
    given) and (K, hc, wc) bool, True on each box's own pixels."""
    if indices is None:
        indices = torch.arange(len(boxes), device=boxes.device)
    chosen = boxes[indices]
    if crop_size is None:
        crop_size = (int((chosen[:, 3] - chosen[:, 1]).max()) + 1,
                     int((chosen[:, 2] - chosen[:, 0]).max()) + 1)
    crop_h, crop_w = crop_size
    dy = torch.arange(crop_h, device=boxes.device)
    dx = torch.arange(crop_w, device=boxes.device)
    inside = ((dy <= (chosen[:, 3] - chosen[:, 1])[:, None])[:, :, None] &
              (dx <= (chosen[:, 2] - chosen[:, 0])[:, None])[:, None, :])
    return indices, chosen, (crop_h, crop_w), inside


def _windows(masks: Tensor, indices: Tensor, top: Tensor, left: Tensor,
             size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """``(values, in_image)``: (K, h, w) bool, each chosen mask read at rows
    ``top ..`` and columns ``left ..`` ((K,) int64, image frame; clamped into
    the image), and whether each of those pixels lies in the image."""
    _, height, width = masks.shape
    ys = top[:, None] + torch.arange(size[0], device=masks.device)  # (K, h)
    xs = left[:, None] + torch.arange(size[1], device=masks.device)  # (K, w)
    in_image = (((ys >= 0) & (ys < height))[:, :, None] &
                ((xs >= 0) & (xs < width))[:, None, :])
    values = masks[indices[:, None, None], ys.clamp(0, height - 1)[:, :, None],
                   xs.clamp(0, width - 1)[:, None, :]]
    return values, in_image


def _first_maximum(crops: Tensor, chosen: Tensor) -> Tuple[Tensor, Tensor]:
    """``(points, found)``: (K, 2) int64 xy, image frame, of each (K, hc, wc)
    crop's first maximum in row-major order (the crops lie at the top-left
    corners (x1, y1) of the (K, 4) boxes ``chosen``), (0, 0) where the
    maximum is not positive; (K,) bool, True where it is."""
    crop_w = crops.shape[2]
    peak, flat = crops.flatten(1).max(1)  # the first maximum, on every device
    points = torch.stack([chosen[:, 0] + flat % crop_w, chosen[:, 1] + flat // crop_w], 1)
    found = peak > 0
    return points * found[:, None], found


def distance_box_crops_torch(masks: Tensor, boxes: Tensor, indices: Optional[Tensor] = None,
                             crop_size: Optional[Tuple[int, int]] = None
                             ) -> Tuple[Tensor, Tensor]:
    """:func:`distance_box_crops` in torch on the masks' device, batched over
    the box crops: the same float32 distances bit for bit and the same peaks,
    ties included (distances are those of :func:`exact_distance`: square
    roots of exact integer squares).

    Each crop is the box plus a one-pixel ring; a ring pixel outside the
    image is not background, as in :func:`distance_box_crops`.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int64 xyxy, inclusive tight boxes.
        indices: (K,) int64, the masks to transform (default: all).
        crop_size: (hc, wc), the largest height and width of those boxes, if
            known on the host (else read from the device: one sync).

    Returns:
        ``(crops, peaks)``: (K, hc, wc) float32 distances of each box at the
        top-left (zero beyond each box; a mask that fills the image, and so
        has no background, gets OpenCV's value for that case), and (K, 2)
        int64 xy of each mask's first maximum (image frame, row-major order;
        (0, 0) for an empty mask).
    """
    if len(boxes if indices is None else indices) == 0:
        return (torch.zeros((0, 1, 1), device=masks.device),
                torch.zeros((0, 2), dtype=torch.long, device=masks.device))
    indices, chosen, (crop_h, crop_w), inside = _crop_bounds(boxes, indices, crop_size)
    values, in_image = _windows(masks, indices, chosen[:, 1] - 1, chosen[:, 0] - 1,
                                (crop_h + 2, crop_w + 2))
    background = ~values & in_image  # beyond the box's ring: the mask's own zeros
    squares = squared_distance_to_features(background)[:, 1:-1, 1:-1]
    # Only a mask that fills the image has no background in its crop, and
    # only a box as large as the image can hold one.
    no_background = float('inf')
    if (crop_h, crop_w) == tuple(masks.shape[1:]):
        no_background = _no_background_distance(crop_h, crop_w)
    crops = torch.where(inside, _sqrt_of_squares(squares, crop_h + crop_w + 4, no_background),
                        0.0)
    peaks, _ = _first_maximum(crops, chosen)
    return crops, peaks


def farthest_background_in_box_torch(masks: Tensor, boxes: Tensor,
                                     indices: Optional[Tensor] = None,
                                     crop_size: Optional[Tuple[int, int]] = None
                                     ) -> Tuple[Tensor, Tensor]:
    """:func:`farthest_background_in_box` in torch on the masks' device,
    batched over the box crops: the same points, ties included.

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int64 xyxy, inclusive tight boxes.
        indices: (K,) int64, the masks to use (default: all).
        crop_size: (hc, wc), the largest height and width of those boxes, if
            known on the host (else read from the device: one sync).

    Returns:
        ``(points, found)``: (K, 2) int64 xy, image frame, and (K,) bool, as
        :func:`farthest_background_in_box`.
    """
    if len(boxes if indices is None else indices) == 0:
        return (torch.zeros((0, 2), dtype=torch.long, device=masks.device),
                torch.zeros(0, dtype=torch.bool, device=masks.device))
    indices, chosen, (crop_h, crop_w), inside = _crop_bounds(boxes, indices, crop_size)
    values, _ = _windows(masks, indices, chosen[:, 1], chosen[:, 0], (crop_h, crop_w))
    foreground = values & inside  # pixels beyond the box are not the mask's
    squares = squared_distance_to_features(foreground)
    # An empty mask has no features: no point, whatever its distances.
    crops = torch.where(inside, _sqrt_of_squares(squares, crop_h + crop_w, float('inf')), 0.0)
    points, found = _first_maximum(crops, chosen)
    found &= foreground.flatten(1).any(1)
    return points * found[:, None], found
