# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Bilinear resizing as matrices, for work restricted to mask boxes.

``F.interpolate(mode='bilinear', align_corners=False)`` without antialiasing is
separable: resizing an (H, W) map to (h, w) is ``R_y @ X @ R_x.T`` with an
(h, H) and a (w, W) matrix of two-tap weights.  A chain of resizes and zero
padding is a product of such matrices, so a map that is zero outside a box
needs only the box's columns of ``R_y`` and ``R_x``: the cost follows the box,
not the image.  Here: the shape of an image resized to an encoder's input
(SAM's longest-side rounding; used by the prompts and the backends), the
matrices, the mask prompt's resize to SAM's mask-input frame, and the windows
a range of inputs reaches (also used by :mod:`.upscale`).
"""
from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor


def resized_shape(height: int, width: int, long_side: int) -> Tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side`` (SAM's rounding)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


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
    return row_support(rows), row_support(cols)


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
        supports: their :func:`row_support` s, if already known
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
        supports = (row_support(rows), row_support(cols))

    def window_matrix(matrix, support, lo, hi, size_in):
        out, valid = index_range(*output_window(*support, lo, hi)[:2], matrix.shape[0])  # (N, o)
        inputs = (lo[:, None] + torch.arange(size_in, device=device)).clamp(
            max=matrix.shape[1] - 1)  # (N, c); beyond the box the crop is zero
        part = matrix[out[:, :, None], inputs[:, None, :]]
        return part * valid[:, :, None], out, valid

    rows_n, oy, valid_y = window_matrix(rows, supports[0], boxes[:, 1], boxes[:, 3],
                                        crop_h)  # (N, oh, hc)
    cols_n, ox, valid_x = window_matrix(cols, supports[1], boxes[:, 0], boxes[:, 2],
                                        crop_w)  # (N, ow, wc)
    windows = rows_n[:, None] @ crops @ cols_n.transpose(1, 2)[:, None]
    return windows, oy, valid_y, ox, valid_x


def row_support(matrix: Tensor) -> Tuple[Tensor, Tensor]:
    """First and last column with a non-zero weight, per row (both non-decreasing)."""
    nonzero = matrix != 0
    columns = torch.arange(matrix.shape[1], device=matrix.device)
    first = torch.where(nonzero, columns, matrix.shape[1]).amin(1)
    last = torch.where(nonzero, columns, -1).amax(1)
    # all-zero rows (SAM's padding, at the end) sort after every real row
    last = torch.where(nonzero.any(1), last, matrix.shape[1])
    return first, last


def output_window(first: Tensor, last: Tensor, lo: Tensor, hi: Tensor):
    """Output range influenced by low-res cells ``lo..hi``, and the cells it reads.

    The range is empty (``out_lo > out_hi``) where no output reads those cells
    (e.g. cells in the encoder square's padding, which the crop drops)."""
    out_lo = torch.searchsorted(last.contiguous(), lo.contiguous())
    out_hi = torch.searchsorted(first.contiguous(), hi.contiguous(), right=True) - 1
    return (out_lo, out_hi, first[out_lo.clamp(max=len(first) - 1)],
            last[out_hi.clamp(min=0)])


def index_range(lo: Tensor, hi: Tensor, limit: int, size: Optional[int] = None):
    """(N, k) indices ``lo .. lo + k - 1``, clamped below ``limit``, and
    whether each lies within ``lo .. hi``.  k: ``size`` when given (at least
    the longest range, else the ranges are cut), else the longest range, at
    least 1, which is read back from the tensors (a host sync on a GPU)."""
    if size is None:
        size = max(int((hi - lo).max()) + 1, 1)
    index = lo[:, None] + torch.arange(size, device=lo.device)
    valid = (index <= hi[:, None]) & (index < limit)
    return index.clamp(max=limit - 1), valid
