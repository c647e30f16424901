# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Bilinear resizing as matrices, for work restricted to mask boxes.

``F.interpolate(mode='bilinear', align_corners=False)`` without antialiasing is
separable: resizing an (H, W) map to (h, w) is ``R_y @ X @ R_x.T`` with an
(h, H) and a (w, W) matrix of two-tap weights.  A chain of resizes and zero
padding is a product of such matrices, so a map that is zero outside a box
needs only the box's columns of ``R_y`` and ``R_x``: the cost follows the box,
not the image.
"""
from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor

from .bool_ops import any_along


def bilinear_matrix(in_size: int, out_size: int, device=None) -> Tensor:
    """(out_size, in_size) float64 weights of PyTorch's 1-D bilinear resize
    (``align_corners=False``, no antialias): output ``i`` samples the input at
    ``(i + 0.5) * in_size / out_size - 0.5``, clamped at 0, between its two
    neighbouring pixels (the last one repeated at the edge)."""
    scale = in_size / out_size
    src = ((torch.arange(out_size, dtype=torch.float64, device=device) + 0.5) * scale
           - 0.5).clamp(min=0)
    lower = src.floor().long().clamp(max=in_size - 1)
    upper = (lower + 1).clamp(max=in_size - 1)
    frac = src - lower
    weights = torch.zeros(out_size, in_size, dtype=torch.float64, device=device)
    rows = torch.arange(out_size, device=device)
    weights.index_put_((rows, lower), 1 - frac, accumulate=True)
    weights.index_put_((rows, upper), frac, accumulate=True)
    return weights


@lru_cache(maxsize=16)
def prompt_resize_matrices(image_size: Tuple[int, int], input_size: Tuple[int, int],
                           encoder_size: int, low_res_size: Tuple[int, int],
                           device=None) -> Tuple[Tensor, Tensor]:
    """``(R_y, R_x)``: (h, H) and (w, W) float32 matrices (cached per sizes and
    device: read-only) taking an original-frame
    map to SAM's low-res mask-input frame the way SAMRefiner's mask prompt does
    (bilinear to the resized input, zero-padded to the encoder's square,
    bilinear to the low-res size)."""
    mats = []
    for axis in (0, 1):
        to_input = bilinear_matrix(image_size[axis], input_size[axis], device)
        padded = torch.zeros(encoder_size, image_size[axis], dtype=torch.float64,
                             device=device)
        padded[:input_size[axis]] = to_input
        mats.append((bilinear_matrix(encoder_size, low_res_size[axis], device) @ padded).float())
    return mats[0], mats[1]


@lru_cache(maxsize=16)
def prompt_resize_supports(image_size: Tuple[int, int], input_size: Tuple[int, int],
                           encoder_size: int, low_res_size: Tuple[int, int], device=None):
    """``(support of R_y, support of R_x)`` of :func:`prompt_resize_matrices`
    (each a pair of (h,) first / last non-zero columns), cached alike."""
    rows, cols = prompt_resize_matrices(image_size, input_size, encoder_size, low_res_size,
                                        device)
    return _support(rows), _support(cols)


def resize_box_crops_to_windows(crops: Tensor, boxes: Tensor, rows: Tensor, cols: Tensor,
                                supports=None):
    """Resize maps that are zero outside their boxes through ``(rows, cols)``
    (``rows @ full_map @ cols.T``), evaluated only on the output window each
    box reaches.

    Args:
        crops: (N, C, hc, wc) float, C maps per box, each box at its top-left
            (zero beyond the box's own height and width).
        boxes: (N, 4) int64 xyxy inclusive, where each crop lies in the image.
        rows, cols: (h, H) and (w, W) resize matrices.
        supports: their :func:`_support` s, if already known
            (:func:`prompt_resize_supports`).

    Returns:
        ``(windows, oy, valid_y, ox, valid_x)``: (N, C, oh, ow) float, the
        resized maps on each box's output window (oh, ow: the largest window of
        the batch); (N, oh) / (N, ow) int64 output rows / columns of the window
        and bool masks of the ones inside it.  Outside its window a resized map
        is exactly zero.
    """
    n, _, crop_h, crop_w = crops.shape
    device = crops.device

    if supports is None:
        supports = (_support(rows), _support(cols))

    def window_matrix(matrix, support, lo, hi, size_in):
        out_lo, out_hi, _, _ = _window(*support, lo, hi)
        size_out = max(int((out_hi - out_lo).max()) + 1, 1)
        out = out_lo[:, None] + torch.arange(size_out, device=device)  # (N, o)
        valid = out <= out_hi[:, None]
        inputs = (lo[:, None] + torch.arange(size_in, device=device)).clamp(
            max=matrix.shape[1] - 1)  # (N, c); beyond the box the crop is zero
        part = matrix[out.clamp(max=matrix.shape[0] - 1)[:, :, None], inputs[:, None, :]]
        return part * valid[:, :, None], out, valid

    rows_n, oy, valid_y = window_matrix(rows, supports[0], boxes[:, 1], boxes[:, 3],
                                        crop_h)  # (N, oh, hc)
    cols_n, ox, valid_x = window_matrix(cols, supports[1], boxes[:, 0], boxes[:, 2],
                                        crop_w)  # (N, ow, wc)
    windows = rows_n[:, None] @ crops @ cols_n.transpose(1, 2)[:, None]
    return windows, oy, valid_y, ox, valid_x


@lru_cache(maxsize=16)
def upscale_matrices(low_res_size: Tuple[int, int], encoder_size: Optional[int],
                     input_size: Tuple[int, int], original_size: Tuple[int, int],
                     device=None) -> Tuple[Tensor, Tensor]:
    """``(U_y, U_x)``: (H, h) and (W, w) float32 matrices (cached per sizes and
    device: read-only) of SAM's
    ``postprocess_masks`` (bilinear low-res -> encoder square, crop to the
    resized input, bilinear to the original size).  ``encoder_size=None``:
    one bilinear step low-res -> original (SAM 2, whose input has no padding)."""
    if encoder_size is None:
        return tuple(bilinear_matrix(low_res_size[axis], original_size[axis], device).float()
                     for axis in (0, 1))
    mats = []
    for axis in (0, 1):
        to_square = bilinear_matrix(low_res_size[axis], encoder_size, device)
        to_original = bilinear_matrix(input_size[axis], original_size[axis], device)
        mats.append((to_original @ to_square[:input_size[axis]]).float())
    return mats[0], mats[1]


def _support(matrix: Tensor) -> Tuple[Tensor, Tensor]:
    """First and last column with a non-zero weight, per row (both non-decreasing)."""
    nonzero = matrix != 0
    columns = torch.arange(matrix.shape[1], device=matrix.device)
    first = torch.where(nonzero, columns, matrix.shape[1]).amin(1)
    last = torch.where(nonzero, columns, -1).amax(1)
    # all-zero rows (SAM's padding, at the end) sort after every real row
    last = torch.where(nonzero.any(1), last, matrix.shape[1])
    return first, last


def _window(first: Tensor, last: Tensor, lo: Tensor, hi: Tensor):
    """Output range influenced by low-res cells ``lo..hi``, and the cells it reads.

    The range is empty (``out_lo > out_hi``) where no output reads those cells
    (e.g. cells in the encoder square's padding, which the crop drops)."""
    out_lo = torch.searchsorted(last.contiguous(), lo.contiguous())
    out_hi = torch.searchsorted(first.contiguous(), hi.contiguous(), right=True) - 1
    return (out_lo, out_hi, first[out_lo.clamp(max=len(first) - 1)],
            last[out_hi.clamp(min=0)])


def upscale_to_masks(low_res: Tensor, rows: Tensor, cols: Tensor,
                     threshold: float = 0.0, out: Optional[Tensor] = None,
                     start: int = 0) -> Tensor:
    """``rows @ low_res @ cols.T > threshold`` for (N, h, w) logits, computed
    only where it can be true.

    An output pixel is a convex combination of a few neighbouring low-res
    logits, so it can exceed ``threshold`` only if one of them does: each mask
    is evaluated on the output window its above-threshold cells influence
    (reading the cells that window depends on) and is False elsewhere.

    Args:
        low_res: (N, h, w) logits.
        rows, cols: (H, h) and (W, w) matrices (:func:`upscale_matrices`).
        out: a flat all-False bool buffer of ``M * H * W + 1`` elements (the
            last one is scratch) holding M >= ``start + N`` masks; these N
            are written as masks ``start ..``.  Default: a new one for N.

    Returns:
        (N, H, W) bool, a view of ``out``.
    """
    n = len(low_res)
    height, width = rows.shape[0], cols.shape[0]
    device = low_res.device
    if out is None:
        out = torch.zeros(n * height * width + 1, dtype=torch.bool, device=device)
    masks = out[start * height * width:(start + n) * height * width].view(n, height, width)
    positive = low_res > threshold
    live = torch.nonzero(any_along(positive.flatten(1), 1)).flatten()
    if len(live) == 0:
        return masks
    positive = positive[live]
    ys = torch.nonzero(positive.any(2))  # (k, 2) [mask, row]
    xs = torch.nonzero(positive.any(1))
    count = len(live)
    r_lo = torch.full((count, ), low_res.shape[1], device=device).scatter_reduce(
        0, ys[:, 0], ys[:, 1], 'amin')
    r_hi = torch.full((count, ), -1, device=device).scatter_reduce(0, ys[:, 0], ys[:, 1], 'amax')
    c_lo = torch.full((count, ), low_res.shape[2], device=device).scatter_reduce(
        0, xs[:, 0], xs[:, 1], 'amin')
    c_hi = torch.full((count, ), -1, device=device).scatter_reduce(0, xs[:, 0], xs[:, 1], 'amax')
    oy_lo, oy_hi, wy_lo, wy_hi = _window(*_support(rows), r_lo, r_hi)
    ox_lo, ox_hi, wx_lo, wx_hi = _window(*_support(cols), c_lo, c_hi)

    def gather(matrix, out_lo, out_hi, win_lo, win_hi):
        size_out = max(int((out_hi - out_lo).max()) + 1, 1)
        size_win = max(int((win_hi - win_lo).max()) + 1, 1)
        o = out_lo[:, None] + torch.arange(size_out, device=device)
        w = win_lo[:, None] + torch.arange(size_win, device=device)
        valid_o = o <= out_hi[:, None]
        valid_w = w <= win_hi[:, None]
        part = matrix[o.clamp(max=matrix.shape[0] - 1)[:, :, None],
                      w.clamp(max=matrix.shape[1] - 1)[:, None, :]]
        return part * (valid_o[:, :, None] & valid_w[:, None, :]), o, valid_o, w, valid_w

    rows_n, oy, valid_y, wy, valid_wy = gather(rows, oy_lo, oy_hi, wy_lo, wy_hi)
    cols_n, ox, valid_x, wx, valid_wx = gather(cols, ox_lo, ox_hi, wx_lo, wx_hi)
    index = torch.arange(count, device=device)[:, None, None]
    window = low_res[live][index, wy.clamp(max=low_res.shape[1] - 1)[:, :, None],
                           wx.clamp(max=low_res.shape[2] - 1)[:, None, :]]
    window = window * (valid_wy[:, :, None] & valid_wx[:, None, :])
    crop = (rows_n @ window @ cols_n.transpose(1, 2)) > threshold
    # Paste the windows through flat indices: valid window cells are distinct
    # pixels; the rest (window padding) all go to the scratch slot at the end.
    index = (((start + live) * (height * width))[:, None, None] + (oy * width)[:, :, None]
             + ox[:, None, :])
    index = torch.where(valid_y[:, :, None] & valid_x[:, None, :], index, len(out) - 1)
    out[index.flatten()] = crop.flatten()
    return masks
