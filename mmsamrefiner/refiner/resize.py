# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Bilinear resizing as matrices, for work restricted to mask boxes.

``F.interpolate(mode='bilinear', align_corners=False)`` without antialiasing is
separable: resizing an (H, W) map to (h, w) is ``R_y @ X @ R_x.T`` with an
(h, H) and a (w, W) matrix of two-tap weights.  A chain of resizes and zero
padding is a product of such matrices, so a map that is zero outside a box
needs only the box's columns of ``R_y`` and ``R_x``: the cost follows the box,
not the image.
"""
from typing import Tuple

import torch
from torch import Tensor


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


def prompt_resize_matrices(image_size: Tuple[int, int], input_size: Tuple[int, int],
                           encoder_size: int, low_res_size: Tuple[int, int],
                           device=None) -> Tuple[Tensor, Tensor]:
    """``(R_y, R_x)``: (h, H) and (w, W) float32 matrices taking an original-frame
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


def resize_box_crops(crops: Tensor, boxes: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Resize maps that are zero outside their boxes through ``(rows, cols)``.

    Args:
        crops: (N, hc, wc) float, each map's box at its top-left (zero beyond
            the box's own height and width).
        boxes: (N, 4) int64 xyxy inclusive, where each crop lies in the image.
        rows, cols: (h, H) and (w, W) resize matrices (:func:`prompt_resize_matrices`).

    Returns:
        (N, h, w) float: ``rows @ full_map @ cols.T`` for each map.
    """
    n, crop_h, crop_w = crops.shape
    y_index = (boxes[:, 1:2] + torch.arange(crop_h, device=crops.device)).clamp(
        max=rows.shape[1] - 1)
    x_index = (boxes[:, 0:1] + torch.arange(crop_w, device=crops.device)).clamp(
        max=cols.shape[1] - 1)
    rows_n = rows.t()[y_index].transpose(1, 2)  # (N, h, hc)
    cols_n = cols.t()[x_index]                  # (N, wc, w)
    return rows_n @ crops @ cols_n
