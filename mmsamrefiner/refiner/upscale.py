# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAM's ``postprocess_masks`` for the kept candidates, computed where it
matters.

Low-res logits go to the original image frame by bilinear resizes (through
the encoder square and its crop for SAM and HQ-SAM; straight for SAM 2), i.e.
``R_y @ logits @ R_x.T`` with banded matrices (:func:`upscale_matrices`).
Every output pixel is a convex combination of a few logits, so a mask is
evaluated only on the window its positive logits reach; narrow windows as
two small products, wide ones row by row and only along the boundary.  Masks
go in groups of similar window size, as the prompt miner's crops do, so that
a small mask is not padded to a large one's window.
"""
from functools import lru_cache
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from .resize import bilinear_matrix, index_range, output_window, row_support


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


class Band(NamedTuple):
    """A resize matrix and its rows as bands: row ``o`` is zero except at
    columns ``first[o] .. last[o]``, where it holds
    ``taps[o, :last[o] - first[o] + 1]``.

    Attributes:
        matrix: (H, h) float32, the resize matrix.
        first, last: (H,) int64, non-decreasing (see :func:`~.resize.row_support`).
        taps: (H, K) float32, K the widest band; zero past each row's band.
    """
    matrix: Tensor
    first: Tensor
    last: Tensor
    taps: Tensor


def band_of(matrix: Tensor) -> Band:
    """The :class:`Band` of an (H, h) resize matrix."""
    first, last = row_support(matrix)
    size = matrix.shape[1]
    k = int((last - first).clamp(min=0).max()) + 1 if len(first) else 1
    cols = first[:, None] + torch.arange(k, device=matrix.device)
    taps = matrix[torch.arange(len(first), device=matrix.device)[:, None],
                  cols.clamp(max=size - 1)] * ((cols <= last[:, None]) & (cols < size))
    return Band(matrix, first, last, taps.float())


@lru_cache(maxsize=16)
def upscale_bands(low_res_size: Tuple[int, int], encoder_size: Optional[int],
                  input_size: Tuple[int, int], original_size: Tuple[int, int],
                  device=None) -> Tuple[Band, Band]:
    """The :class:`Band` s of :func:`upscale_matrices` (cached alike)."""
    rows, cols = upscale_matrices(low_res_size, encoder_size, input_size, original_size, device)
    return band_of(rows), band_of(cols)


def _threshold_dense(logits: Tensor, row_band: Band, col_band: Band, oy, valid_y, cells_y,
                     ox, valid_x, cells_x, threshold: float) -> Tensor:
    """(N, oh, ow) ``(R_y @ logits @ R_x.T)[oy, ox] > threshold`` as two
    batched products over the low-res cells those outputs read
    (``cells_*``: (N, k) indices and validity)."""
    n, h, w = logits.shape
    (wy, valid_wy), (wx, valid_wx) = cells_y, cells_x
    rows = row_band.matrix[oy[:, :, None], wy[:, None, :]] * (
        valid_y[:, :, None] & valid_wy[:, None, :])
    cols = col_band.matrix[ox[:, :, None], wx[:, None, :]] * (
        valid_x[:, :, None] & valid_wx[:, None, :])
    window = logits[torch.arange(n, device=logits.device)[:, None, None],
                    wy[:, :, None], wx[:, None, :]]
    return (rows @ window.float() @ cols.transpose(1, 2)) > threshold


def _threshold_by_taps(logits: Tensor, positive: Tensor, row_band: Band, col_band: Band,
                       oy: Tensor, ox: Tensor, threshold: float,
                       max_boundary: float = 0.125) -> Optional[Tensor]:
    """(N, oh, ow) ``(R_y @ logits @ R_x.T)[oy, ox] > threshold``, computed
    only on the boundary.

    Each output pixel is a convex combination of its taps, the few low-res
    cells its rows of ``R_y`` and ``R_x`` read: if all of them exceed the
    threshold the pixel does, if none does it does not; only pixels with both
    kinds (along the masks' boundaries) are computed.  ``positive``: (N, h, w)
    uint8, ``logits > threshold``.  Returns None when more than
    ``max_boundary`` of the pixels are on a boundary (ragged, noisy logits),
    where the matrix products are cheaper.  Host syncs: the boundary's size,
    and its indices where they are used.
    """
    n, h, w = logits.shape
    device = logits.device
    ky, kx = row_band.taps.shape[1], col_band.taps.shape[1]

    def tap(band, index, k, size):  # past its band a row repeats its last cell
        return torch.minimum(band.first[index] + k, band.last[index]).clamp(max=size - 1)

    rows = None
    for k in range(ky):  # how many of each output pixel's ky * kx taps are positive
        part = positive.gather(1, tap(row_band, oy, k, h)[:, :, None].expand(-1, -1, w))
        rows = part if rows is None else rows.add_(part)        # (N, oh, w)
    hits = None
    for k in range(kx):
        part = rows.gather(2, tap(col_band, ox, k, w)[:, None, :].expand(-1, oy.shape[1], -1))
        hits = part if hits is None else hits.add_(part)         # (N, oh, ow)
    above = hits == ky * kx
    boundary = (hits > 0) & ~above
    count = int(torch.count_nonzero(boundary))  # read before nonzero allocates its indices
    if count > max_boundary * boundary.numel():
        return None
    if count == 0:
        return above
    c, i, j = torch.nonzero(boundary, as_tuple=True)
    y, x = oy[c, i], ox[c, j]
    cell_y = (row_band.first[y, None] + torch.arange(ky, device=device)).clamp(max=h - 1)
    cell_x = (col_band.first[x, None] + torch.arange(kx, device=device)).clamp(max=w - 1)
    cells = logits.float().reshape(-1)[
        ((c * h)[:, None, None] + cell_y[:, :, None]) * w + cell_x[:, None, :]]  # (M, ky, kx)
    # rows first, as R_y @ logits @ R_x.T associates
    value = ((row_band.taps[y, :, None] * cells).sum(1) * col_band.taps[x]).sum(1)
    above[c, i, j] = value > threshold  # boundary pixels are not in ``above``
    return above


class AxisSpans(NamedTuple):
    """Along one axis (rows or columns), each mask's output window and the
    low-res cells it reads, as inclusive ranges.

    Attributes:
        out_lo, out_hi: (N,) int64 outputs (original image frame) that the
            mask's above-threshold cells reach; empty (``out_lo > out_hi``)
            where none does (no cell above the threshold, or all of them in
            the encoder square's padding, which the crop drops).
        read_lo, read_hi: (N,) int64 low-res cells those outputs read.
    """
    out_lo: Tensor
    out_hi: Tensor
    read_lo: Tensor
    read_hi: Tensor


def axis_spans(band: Band, positive_cells: Tensor) -> AxisSpans:
    """The :class:`AxisSpans` of N masks along the axis of ``band``.

    Args:
        band: the axis's resize matrix (:class:`Band`, outputs x ``size_in``).
        positive_cells: (N, size_in) uint8, non-zero at the low-res cells
            (along this axis) where the mask has a logit above the threshold.
    """
    size_in = positive_cells.shape[1]
    cells = torch.arange(size_in, device=positive_cells.device)
    positive = positive_cells > 0
    lo = torch.where(positive, cells, size_in).amin(1)
    hi = torch.where(positive, cells, -1).amax(1)
    return AxisSpans(*output_window(band.first, band.last, lo, hi))


class AxisWindow(NamedTuple):
    """Along one axis (rows or columns), the outputs each mask's window of a
    batch covers and the low-res cells they read.

    Attributes:
        out: (K, k) int64 output indices (original image frame), clamped into
            the output; ``valid`` (K, k) bool marks those inside the window
            (the rest pad the shorter windows).
        valid: see ``out``.
        cells: ``(index, valid)``, (K, k') each: the low-res cells the
            window's outputs read, and which of them are real.
    """
    out: Tensor
    valid: Tensor
    cells: Tuple[Tensor, Tensor]


def axis_window(spans: AxisSpans, index: Tensor, size: int, read_size: int, limit: int,
                size_in: int) -> AxisWindow:
    """The :class:`AxisWindow` of masks ``index`` ((K,) int64) of ``spans``,
    padded to ``size`` outputs (of ``limit``) and ``read_size`` low-res cells
    (of ``size_in``): at least their longest window and read range."""
    out, valid = index_range(spans.out_lo[index], spans.out_hi[index], limit, size)
    return AxisWindow(out, valid, index_range(spans.read_lo[index], spans.read_hi[index],
                                              size_in, read_size))


class WindowGroup(NamedTuple):
    """Masks of a batch upscaled together, each padded to the group's
    largest window.

    Attributes:
        index: (K,) int64, the masks' places in the batch.
        height, width: the largest window's size in output pixels (rows,
            columns), at least 1.
        read_height, read_width: the most low-res rows / columns a window of
            the group reads.
    """
    index: Tensor
    height: int
    width: int
    read_height: int
    read_width: int


def similar_size_runs(heights: List[int], widths: List[int], max_padding: float = 2.0,
                      min_window: int = 64 * 64) -> List[Tuple[int, int]]:
    """Split windows sorted by area into runs of similar size: ``(first,
    stop)`` position ranges covering ``0 .. len(heights) - 1``.

    The rule of the prompt miner's :func:`~.prompts.size_groups`: a run grows
    while its padded window (its largest height times its largest width)
    stays within ``max_padding`` times its first (smallest) window's area, or
    within ``min_window`` pixels (small windows cost less padded than as
    separate batches).
    """
    runs, first, max_h, max_w = [], 0, 0, 0
    for i, (h, w) in enumerate(zip(heights, widths)):
        grown_h, grown_w = max(max_h, h), max(max_w, w)
        if i > first and grown_h * grown_w > max(max_padding * heights[first] * widths[first],
                                                 min_window):
            runs.append((first, i))
            first, grown_h, grown_w = i, h, w
        max_h, max_w = grown_h, grown_w
    if heights:
        runs.append((first, len(heights)))
    return runs


def window_groups(rows: AxisSpans, cols: AxisSpans, group_windows: bool = True
                  ) -> List[WindowGroup]:
    """The masks whose window is not empty, as :class:`WindowGroup` s.

    ``group_windows``: in groups of similar window size
    (:func:`similar_size_runs`, smallest first); False: all in one group in
    their order, padded to the largest window.  The windows' sizes are read
    back to the host once (the one host sync of :func:`upscale_to_masks`
    besides those of :func:`_threshold_by_taps`); each group's ``index`` is a
    slice of one device tensor.
    """
    heights = (rows.out_hi - rows.out_lo + 1).clamp(min=0)
    widths = (cols.out_hi - cols.out_lo + 1).clamp(min=0)
    areas = heights * widths
    # empty windows (area 0) go first when sorted by area, last otherwise
    order = torch.sort(areas if group_windows else (areas == 0).to(torch.uint8),
                       stable=True).indices
    table = torch.stack([areas, heights, widths, rows.read_hi - rows.read_lo + 1,
                         cols.read_hi - cols.read_lo + 1])[:, order]
    areas, heights, widths, read_heights, read_widths = table.tolist()
    live = [i for i, area in enumerate(areas) if area > 0]
    if not live:
        return []
    offset, stop = live[0], live[-1] + 1  # the non-empty windows are contiguous
    if group_windows:
        runs = similar_size_runs(heights[offset:], widths[offset:])
    else:
        runs = [(0, stop - offset)]
    return [
        WindowGroup(order[offset + a:offset + b], max(heights[offset + a:offset + b]),
                    max(widths[offset + a:offset + b]),
                    max(read_heights[offset + a:offset + b]),
                    max(read_widths[offset + a:offset + b])) for a, b in runs
    ]


def _paste_windows(out: Tensor, crop: Tensor, slots: Tensor, rows: AxisWindow,
                   cols: AxisWindow, height: int, width: int) -> None:
    """Write (K, oh, ow) window crops into the flat buffer ``out`` as masks
    ``slots`` ((K,) int64) of (height, width), pixel by pixel through flat
    indices: valid window cells are distinct pixels; the rest (window
    padding) all go to the scratch slot at the end."""
    index = ((slots * (height * width))[:, None, None] + (rows.out * width)[:, :, None]
             + cols.out[:, None, :])
    index = torch.where(rows.valid[:, :, None] & cols.valid[:, None, :], index, len(out) - 1)
    out[index.flatten()] = crop.flatten()


def _threshold_whole_rows(logits: Tensor, positive: Tensor, row_band: Band, col_band: Band,
                          rows: AxisWindow, threshold: float) -> Tensor:
    """(K, oh, W) ``(R_y @ logits @ R_x.T > threshold)`` on the window's
    rows and every column: only along the boundary
    (:func:`_threshold_by_taps`), or as the products over whole rows where
    the boundary is ragged.  ``positive``: (K, h, w) uint8,
    ``logits > threshold``."""
    count, _, w = logits.shape
    width = len(col_band.first)
    ox = torch.arange(width, device=logits.device).expand(count, -1)
    crop = _threshold_by_taps(logits, positive, row_band, col_band, rows.out, ox, threshold)
    if crop is None:  # a ragged boundary: the products over whole rows
        every = torch.arange(count, device=logits.device)
        cells_x = index_range(torch.zeros_like(every), torch.full_like(every, w - 1), w, w)
        crop = _threshold_dense(logits, row_band, col_band, rows.out, rows.valid, rows.cells, ox,
                                torch.ones_like(ox, dtype=torch.bool), cells_x, threshold)
    return crop


def _paste_rows(out: Tensor, crop: Tensor, slots: Tensor, rows: AxisWindow, height: int,
                width: int) -> None:
    """Write (K, oh, width) whole-row crops into the flat buffer ``out`` as
    masks ``slots`` ((K,) int64) of (height, width), row by row: the rows of
    the window are distinct rows of the masks; the rest (window padding) all
    go to the scratch row at the end."""
    scratch = len(out) // width - 1
    image_rows = torch.where(rows.valid, slots[:, None] * height + rows.out, scratch)
    out.view(-1, width)[image_rows.flatten()] = crop.flatten(0, 1)


def upscale_to_masks(low_res: Tensor, row_band: Band, col_band: Band,
                     threshold: float = 0.0, out: Optional[Tensor] = None,
                     start: int = 0, group_windows: bool = True) -> Tensor:
    """``R_y @ low_res @ R_x.T > threshold`` for (N, h, w) logits, computed
    only where it can be true.

    An output pixel is a convex combination of a few neighbouring low-res
    logits, so it can exceed ``threshold`` only if one of them does: each
    mask is evaluated on the output window its above-threshold cells reach
    (:func:`axis_spans`) and is False elsewhere.  The masks are taken in
    groups of similar window size (:func:`window_groups`), each padded to
    its own largest window, so a small mask does not pay for a large one.
    In a group, narrow windows (under half the image's width) are computed
    as two small products (:func:`_threshold_dense`) and pasted pixel by
    pixel (:func:`_paste_windows`); wide ones as whole rows, where only the
    masks' boundaries are computed (:func:`_threshold_whole_rows`), and
    pasted row by row (:func:`_paste_rows`).

    Host syncs: one (the windows' sizes), plus at most two for each group
    of wide windows (:func:`_threshold_by_taps`).

    Args:
        low_res: (N, h, w) logits.
        row_band, col_band: the :class:`Band` s of ``R_y`` (H, h) and ``R_x``
            (W, w) (:func:`upscale_bands`).
        out: a flat all-False bool buffer of ``(M * H + 1) * W`` elements
            (the last row of W is scratch) holding M >= ``start + N`` masks;
            these N are written as masks ``start ..``.  Default: a new one for
            N.
        group_windows: False: all masks in one group, padded to the largest
            window (the same masks, slower when their sizes differ; the
            baseline of ``tools/benchmark_speed.py --upscale-bench``).

    Returns:
        (N, H, W) bool, a view of ``out``.
    """
    n, h, w = low_res.shape
    height, width = len(row_band.first), len(col_band.first)
    if out is None:
        out = torch.zeros((n * height + 1) * width, dtype=torch.bool, device=low_res.device)
    elif out.dim() != 1 or len(out) % width or len(out) < ((start + n) * height + 1) * width:
        raise ValueError(f'out must be a flat buffer of (M * {height} + 1) * {width} elements '
                         f'with M >= {start + n}, got shape {tuple(out.shape)}')
    masks = out[start * height * width:(start + n) * height * width].view(n, height, width)
    positive = (low_res > threshold).view(torch.uint8)
    rows = axis_spans(row_band, positive.amax(2))
    cols = axis_spans(col_band, positive.amax(1))
    for group in window_groups(rows, cols, group_windows):
        logits = low_res[group.index]
        row_window = axis_window(rows, group.index, group.height, group.read_height, height, h)
        col_window = axis_window(cols, group.index, group.width, group.read_width, width, w)
        slots = start + group.index  # the masks' places in ``out``
        if 2 * group.width < width:
            crop = _threshold_dense(logits, row_band, col_band, row_window.out, row_window.valid,
                                    row_window.cells, col_window.out, col_window.valid,
                                    col_window.cells, threshold)
            _paste_windows(out, crop, slots, row_window, col_window, height, width)
        else:
            crop = _threshold_whole_rows(logits, positive[group.index], row_band, col_band,
                                         row_window, threshold)
            _paste_rows(out, crop, slots, row_window, height, width)
    return masks
