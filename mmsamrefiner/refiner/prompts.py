# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Noise-tolerant prompts mined from coarse masks (SAMRefiner, Sec. 3.2).

Frames: coarse masks are (N, H, W) bool in the *original image frame*; points
are xy and boxes xyxy in that frame's pixel indices (SAM's prompt encoder adds
the half-pixel shift itself).  Mask prompts are in SAM's *low-res mask-input
frame*: the padded, square encoder input (side ``S``) downsampled to
``prompt_encoder.mask_input_size``.

* positive point: the foreground pixel farthest from the background;
* negative point: the background pixel inside the box farthest from the mask
  (e.g. the hollow of a C-shape);
* box: the tight box, optionally grown by the context-aware elastic box;
* Gaussian-style mask prompt: the coarse mask as +-``strength`` logits shaped by
  a Gaussian of the distance to the positive point.
"""
from dataclasses import dataclass, fields
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .bool_ops import any_along
from .distance import (
    distance_box_crops,
    distance_box_crops_torch,
    farthest_background_in_box,
    farthest_background_in_box_torch,
)
from .resize import (
    prompt_resize_matrices,
    prompt_resize_supports,
    resize_box_crops_to_windows,
    resized_shape,
)


@dataclass
class Prompts:
    """SAM prompts for N masks of one image.

    Attributes:
        points: (N, K, 2) float32 xy in the original image frame, or None when
            point prompts are off.  K is 2 (positive, negative) or 1.
        labels: (N, K) int64; 1 positive, 0 negative, -1 "no point" (a mask
            whose box holds no background has no negative point).
        boxes: (N, 4) float32 xyxy in the original image frame, or None.
        mask_inputs: (N, 1, h, w) float32 logits at SAM's low-res mask-input
            size, or None.
        expanded: (N,) bool, True where the elastic box grew the box.
    """
    points: Optional[Tensor]
    labels: Optional[Tensor]
    boxes: Optional[Tensor]
    mask_inputs: Optional[Tensor]
    expanded: Tensor

    def __len__(self) -> int:
        return len(self.expanded)

    def to(self, device) -> 'Prompts':
        return Prompts(**{
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
            for f in fields(self)
        })


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight boxes of (N, H, W) bool masks: (N, 4) int64 xyxy, inclusive.

    Empty masks get ``(0, 0, 0, 0)``.
    """
    n, height, width = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.long, device=masks.device)
    rows, cols = any_along(masks, 2), any_along(masks, 1)  # (N, H), (N, W)
    y1 = rows.int().argmax(1)
    y2 = height - 1 - rows.flip(1).int().argmax(1)
    x1 = cols.int().argmax(1)
    x2 = width - 1 - cols.flip(1).int().argmax(1)
    boxes = torch.stack([x1, y1, x2, y2], 1)
    return boxes * rows.any(1, keepdim=True)


def _box_sums(integral: Tensor, y0: Tensor, y1: Tensor, x0: Tensor,
              x1: Tensor) -> Tensor:
    """Sums over rows [y0, y1) and columns [x0, x1) from (N, H+1, W+1) integral
    images; all bounds (N,) int64."""
    idx = torch.arange(len(integral), device=integral.device)
    return (integral[idx, y1, x1] - integral[idx, y0, x1] -
            integral[idx, y1, x0] + integral[idx, y0, x0])


def context_similarity(masks: Tensor, image_embedding: Tensor,
                       threshold: float = 0.5,
                       valid_grid: Optional[Tuple[int, int]] = None) -> Tensor:
    """Pixels whose SAM feature resembles each mask's mean feature.

    The embedding is cropped to its unpadded region, upsampled bilinearly to the
    image size and L2-normalised per pixel; the query is the mean embedding under
    the mask (resized nearest to the embedding grid), L2-normalised.  Because
    bilinear upsampling is linear, ``up(F) . q`` is computed as ``up(F . q)``
    and the per-pixel norms are accumulated over channel chunks, so the
    full-size (C, H, W) embedding is never held in memory.

    Args:
        masks: (N, H, W) bool, original image frame.
        image_embedding: (C, h, w) float, SAM's embedding of the padded input.
        threshold: cosine-similarity threshold.
        valid_grid: (h', w') embedding cells covering the image; default: from
            the image's aspect ratio (SAM pads the short side).

    Returns:
        (N, H, W) bool, original image frame.  All False for a mask too small
        to cover an embedding cell.
    """
    n, height, width = masks.shape
    grid_h, grid_w = image_embedding.shape[-2:]
    if valid_grid is not None:
        valid_h, valid_w = valid_grid
    elif height >= width:
        valid_h, valid_w = grid_h, int(grid_h * width / height)
    else:
        valid_h, valid_w = int(grid_w * height / width), grid_w
    feats = image_embedding[:, :valid_h, :valid_w].float()  # (C, h', w')
    small = F.interpolate(masks[:, None].float(), (valid_h, valid_w),
                          mode='nearest')[:, 0]  # (N, h', w')
    count = small.flatten(1).sum(1)
    query = torch.einsum('chw,nhw->nc', feats, small) / count.clamp(min=1)[:, None]
    query = F.normalize(query, dim=1)
    dots = F.interpolate(torch.einsum('chw,nc->nhw', feats, query)[None],
                         (height, width), mode='bilinear', align_corners=False)[0]
    norm_sq = torch.zeros((height, width), device=feats.device)
    for chunk in feats.split(16):
        up = F.interpolate(chunk[None], (height, width), mode='bilinear',
                           align_corners=False)[0]
        norm_sq += up.pow(2).sum(0)
    sim = dots / norm_sq.sqrt().clamp(min=1e-12) > threshold
    return sim & (count > 0)[:, None, None]


BOX_GEOMETRIES = ('symmetric', 'authors')


class ElasticReach(NamedTuple):
    """Where each side of each box moves if it grows, and where its strip lies.

    Attributes:
        x1, y1, x2, y2: (N,) int64, the sides after growing, original image
            frame (inclusive; they may lie outside the image, which
            :func:`_sides_that_grow` refuses).
        lowest: the first row / column a left or top side may move onto.
        inner: how many pixels into the box the right and bottom strips
            start, and how far short of the box's last row / column every
            strip's span stops.
    """
    x1: Tensor
    y1: Tensor
    x2: Tensor
    y2: Tensor
    lowest: int
    inner: int


def symmetric_reach(boxes: Tensor) -> ElasticReach:
    """``geometry='symmetric'``: each side of the (N, 4) int64 inclusive xyxy
    boxes moves by ``floor(min(0.1 * side, 10))``; sides may reach row or
    column 0; strips lie just outside the box, along its whole side."""
    x1, y1, x2, y2 = boxes.unbind(1)
    step_x = torch.clamp(0.1 * (x2 - x1), max=10).floor().long()
    step_y = torch.clamp(0.1 * (y2 - y1), max=10).floor().long()
    return ElasticReach(x1 - step_x, y1 - step_y, x2 + step_x, y2 + step_y, lowest=0, inner=0)


def authors_reach(boxes: Tensor) -> ElasticReach:
    """``geometry='authors'``: the authors' ``int(x1 - s)`` / ``int(x2 + s)``
    with ``s = min(side, 100) / 10`` on the (N, 4) int64 inclusive xyxy
    boxes: left and top move by ``ceil(s)``, right and bottom by
    ``floor(s)``; no side onto row or column 0; strips shifted one pixel
    into the box (:func:`elastic_boxes`).

    ``ceil(s)`` and ``floor(s)`` are computed in integers: the authors' float
    ``s`` is within an ulp of ``side / 10``, which changes neither (a
    non-integer ``s`` is at least 0.1 from an integer; ``10 * 0.1`` ...
    ``100 * 0.1`` are exact)."""
    x1, y1, x2, y2 = boxes.unbind(1)
    tenths_x, tenths_y = (x2 - x1).clamp(max=100), (y2 - y1).clamp(max=100)
    return ElasticReach(x1 - (tenths_x + 9) // 10, y1 - (tenths_y + 9) // 10,
                        x2 + tenths_x // 10, y2 + tenths_y // 10, lowest=1, inner=1)


def _share_above(integral: Tensor, allowed: Tensor, ya: Tensor, yb: Tensor, xa: Tensor,
                 xb: Tensor, threshold: float) -> Tensor:
    """(N,) bool: ``allowed``, and the share of similar pixels in rows
    ``[ya, yb)`` and columns ``[xa, xb)`` (clamped to the image) of each
    (N, H+1, W+1) integral image exceeds ``threshold`` (an empty strip
    counts as one pixel)."""
    height, width = integral.shape[1] - 1, integral.shape[2] - 1
    ya, yb = ya.clamp(0, height), yb.clamp(0, height)
    xa, xb = xa.clamp(0, width), xb.clamp(0, width)
    area = ((yb - ya) * (xb - xa)).clamp(min=1)
    return allowed & (_box_sums(integral, ya, yb, xa, xb) / area > threshold)


def _sides_that_grow(integral: Tensor, boxes: Tensor, reach: ElasticReach,
                     elastic_margin: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(N,) bool each for the left, top, right and bottom sides of the
    (N, 4) int64 inclusive xyxy boxes: the box is not flat, the side moves,
    it stays in the image (a left or top side at or past row / column
    ``reach.lowest``), and its strip's share of similar pixels (from the
    (N, H+1, W+1) integral image) exceeds ``elastic_margin``."""
    height, width = integral.shape[1] - 1, integral.shape[2] - 1
    x1, y1, x2, y2 = boxes.unbind(1)
    inner = reach.inner
    nonflat = (x2 > x1) & (y2 > y1)
    # Strips span the side's length less ``inner`` pixels (the authors' [y1, y2)).
    row_end, col_end = y2 + 1 - inner, x2 + 1 - inner
    left = _share_above(integral, nonflat & (reach.x1 < x1) & (reach.x1 >= reach.lowest),
                        y1, row_end, reach.x1, x1, elastic_margin)
    right = _share_above(integral, nonflat & (reach.x2 > x2) & (reach.x2 <= width - 1),
                         y1, row_end, x2 + 1 - inner, reach.x2 + 1 - inner, elastic_margin)
    top = _share_above(integral, nonflat & (reach.y1 < y1) & (reach.y1 >= reach.lowest),
                       reach.y1, y1, x1, col_end, elastic_margin)
    bottom = _share_above(integral, nonflat & (reach.y2 > y2) & (reach.y2 <= height - 1),
                          y2 + 1 - inner, reach.y2 + 1 - inner, x1, col_end, elastic_margin)
    return left, top, right, bottom


def elastic_boxes(masks: Tensor, boxes: Tensor, image_embedding: Tensor,
                  elastic_margin: float, valid_grid: Optional[Tuple[int, int]] = None,
                  geometry: str = 'authors') -> Tuple[Tensor, Tensor]:
    """Context-aware elastic boxes (CEBox).

    Each side of each box (inclusive xyxy, ``w = x2 - x1``, ``h = y2 - y1``,
    both > 0; ``s = min(0.1 * w, 10)`` for x, likewise for y) is tested on a
    strip: when the fraction of strip pixels similar to the mask
    (:func:`context_similarity`) exceeds ``elastic_margin``, that side moves out.  The
    four sides are decided independently, on the tight box.

    ``geometry='authors'`` (default, as :class:`PromptMiner` and
    :class:`~.refiner.SAMRefiner`), the authors' code
    (:func:`authors_reach`): their ``int(x1 - s)`` and ``int(x2 + s)`` move
    the left and top sides by ``ceil(s)`` and the right and bottom ones by
    ``floor(s)``; a side moves only if it moves at all (right and bottom
    need ``s >= 1``) and the new box stays in the image and off row and
    column 0 (``new_x1 >= 1``, ``new_y1 >= 1``, ``new_x2 <= W - 1``,
    ``new_y2 <= H - 1``).  Strips are half-open ranges of the tight box's
    corners: left columns ``[new_x1, x1)``, right ``[x2, new_x2)`` (the
    box's own last column, not the outermost new one), both over rows
    ``[y1, y2)``; top rows ``[new_y1, y1)``, bottom ``[y2, new_y2)``, both
    over columns ``[x1, x2)``.

    ``geometry='symmetric'`` (:func:`symmetric_reach`): every side moves by
    ``floor(s)`` (no growth when 0); the strip is the ``floor(s)`` rows or
    columns just outside the side, along the side's whole length (``y1..y2``
    or ``x1..x2``); the grown box must stay in the image (a side may reach
    row or column 0).

    Args:
        masks: (N, H, W) bool, original image frame.
        boxes: (N, 4) int64 xyxy inclusive (the masks' tight boxes).
        image_embedding: (C, h, w), SAM's embedding of the padded input.
        elastic_margin: the threshold lambda in (0, 1).
        valid_grid: see :func:`context_similarity`.
        geometry: ``'authors'`` or ``'symmetric'`` (above).

    Returns:
        ``(boxes, expanded)``: (N, 4) int64 xyxy and (N,) bool.
    """
    if geometry not in BOX_GEOMETRIES:
        raise ValueError(f'geometry must be one of {BOX_GEOMETRIES}, got {geometry!r}')
    sim = context_similarity(masks, image_embedding, valid_grid=valid_grid)
    integral = F.pad(sim.int().cumsum(1).cumsum(2), (1, 0, 1, 0))  # (N, H+1, W+1)
    reach = symmetric_reach(boxes) if geometry == 'symmetric' else authors_reach(boxes)
    left, top, right, bottom = _sides_that_grow(integral, boxes, reach, elastic_margin)
    x1, y1, x2, y2 = boxes.unbind(1)
    grown = torch.stack([
        torch.where(left, reach.x1, x1),
        torch.where(top, reach.y1, y1),
        torch.where(right, reach.x2, x2),
        torch.where(bottom, reach.y2, y2),
    ], 1)
    return grown, left | right | top | bottom


def box_crops(maps: Tensor, boxes: Tensor, indices: Optional[Tensor] = None,
              crop_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Each (N, H, W) map's box ((N, 4) xyxy inclusive), at the top-left of an
    (N, hc, wc) array (hc, wc: the largest box), zero beyond its own box.

    ``indices`` ((K,) int64): crop only those maps (read in place, not copied
    first); the result is then (K, hc, wc).  ``crop_size``: (hc, wc) if known
    on the host (else read from the device: one sync)."""
    height, width = maps.shape[1:]
    if indices is None:
        indices = torch.arange(len(maps), device=maps.device)
    boxes = boxes[indices]
    n = len(indices)
    if n == 0:
        return maps.new_zeros((0, 1, 1))
    if crop_size is None:
        crop_size = (int((boxes[:, 3] - boxes[:, 1]).max()) + 1,
                     int((boxes[:, 2] - boxes[:, 0]).max()) + 1)
    crop_h, crop_w = crop_size
    dy = torch.arange(crop_h, device=maps.device)
    dx = torch.arange(crop_w, device=maps.device)
    ys = boxes[:, 1:2] + dy                       # (N, hc)
    xs = boxes[:, 0:1] + dx                       # (N, wc)
    inside = ((ys <= boxes[:, 3:4])[:, :, None] & (xs <= boxes[:, 2:3])[:, None, :])
    index = indices[:, None, None]
    crops = maps[index, ys.clamp(max=height - 1)[:, :, None], xs.clamp(max=width - 1)[:, None, :]]
    return crops * inside


def gaussian_mask_prompts(mask_crops: Tensor, dist_crops: Tensor, boxes: Tensor,
                          amplitude: Tensor, gamma: float,
                          image_size: Tuple[int, int], input_size: Tuple[int, int],
                          encoder_size: int, low_res_size: Tuple[int, int]) -> Tensor:
    """Gaussian-style mask prompts in SAM's low-res mask-input frame.

    Inside a mask ``g = exp(-(d - dmax)^2 / max(area / gamma, 1))`` where ``d`` is
    the distance to the background and ``dmax`` its maximum (at the positive
    point).  The mask as +1/-1 and ``g`` are resized bilinearly to the resized
    input, padded (-1 and 0) to the encoder's square input, resized bilinearly
    to the low-res size; the prompt is ``sign(mask) * amplitude * g`` with
    ``g`` set to 1 where it is not positive (outside the mask).

    The resizes are done as matrices on each mask's box only, evaluated on
    the output window the box reaches (:func:`.resize.resize_box_crops_to_windows`):
    the +1/-1 map resizes to ``2 * resize(mask) - 1`` since the weights of a
    bilinear resize sum to one, and both ``mask`` and ``g`` are zero outside
    the box.

    Args:
        mask_crops: (N, hc, wc) bool, each mask's box (:func:`box_crops`).
        dist_crops: (N, hc, wc) float, the distances to the background on the
            same boxes (:func:`~.distance.distance_box_crops`).
        boxes: (N, 4) int64 xyxy inclusive tight boxes, original image frame.
        amplitude: (N,) float, ``strength`` (or 1 for expanded boxes).
        gamma: span of the Gaussian (larger is narrower).
        image_size: (H, W) of the original image.
        input_size: (h, w) of the image resized to the encoder (unpadded).
        encoder_size: side of SAM's square encoder input.
        low_res_size: (h, w) of SAM's mask input.

    Returns:
        (N, 1, h, w) float32 mask logits.
    """
    if len(mask_crops) == 0:
        return mask_crops.new_zeros((0, 1) + tuple(low_res_size), dtype=torch.float32)
    n, crop_h, crop_w = mask_crops.shape
    maps = mask_crops.new_empty((n, 2, crop_h, crop_w), dtype=torch.float32)
    maskf = maps[:, 0]
    maskf.copy_(mask_crops)
    area = maskf.flatten(1).sum(1)
    dmax = dist_crops.flatten(1).amax(1)
    span = (area / gamma).clamp(min=1)
    gauss = maps[:, 1]  # in place: exp(-(d - dmax)^2 / span) on the mask, 0 off it
    torch.sub(dist_crops, dmax[:, None, None], out=gauss)
    gauss.square_().div_(-span[:, None, None]).exp_().mul_(maskf)
    key = (tuple(image_size), tuple(input_size), encoder_size, tuple(low_res_size),
           mask_crops.device)
    rows, cols = prompt_resize_matrices(*key)
    windows, oy, valid_y, ox, valid_x = resize_box_crops_to_windows(
        maps, boxes, rows, cols, prompt_resize_supports(*key))
    inside, gauss = windows[:, 0], windows[:, 1]
    gauss = torch.where(gauss > 0, gauss, torch.ones_like(gauss))  # exact 0 off the mask
    sign = torch.where(inside > 0.5 + 1e-6, 1.0, -1.0)
    amplitude = amplitude.float()
    values = sign * amplitude[:, None, None] * gauss
    # Off its window a map resizes to exactly 0: the prompt is -amplitude there.
    # Window rows / columns outside the window are written to one extra row /
    # column, dropped after (no host sync for the number of valid cells).
    low_h, low_w = low_res_size
    prompts = (-amplitude)[:, None, None].repeat(1, low_h + 1, low_w + 1)
    out_y = torch.where(valid_y, oy, low_h)
    out_x = torch.where(valid_x, ox, low_w)
    index = torch.arange(n, device=prompts.device)[:, None, None]
    prompts[index, out_y[:, :, None], out_x[:, None, :]] = values
    return prompts[:, None, :low_h, :low_w]


def size_groups(boxes: Tensor, max_padding: float = 2.0,
                min_crop: int = 128 * 128) -> List[Tensor]:
    """Indices of the boxes in groups of similar size (smallest first).

    Boxes are taken in order of area; a group grows while its padded crop (its
    largest height times its largest width) stays within ``max_padding`` times
    the area of its smallest box, or within ``min_crop`` pixels (small crops
    cost less padded than as separate groups).

    Args:
        boxes: (N, 4) int64 xyxy inclusive.

    Returns:
        A list of (k,) int64 index tensors that together hold each of 0..N-1 once.
    """
    return [group for group, _ in size_groups_and_crops(boxes, max_padding, min_crop)]


def size_groups_and_crops(boxes: Tensor, max_padding: float = 2.0,
                          min_crop: int = 128 * 128
                          ) -> List[Tuple[Tensor, Tuple[int, int]]]:
    """:func:`size_groups`, each group with its crop size (hc, wc): the
    largest height and width of its boxes, known on the host.

    Two host syncs in all, whatever the number of groups: the box sizes are
    read once, and the order is copied to the device once (the groups are
    slices of it).
    """
    sizes = (boxes[:, 2:] - boxes[:, :2] + 1).tolist()  # [[w, h], ...]
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])
    groups, current, max_h, max_w, smallest = [], [], 0, 0, 0
    for i in order:
        width, height = sizes[i]
        h, w = max(max_h, height), max(max_w, width)
        if current and h * w > max(max_padding * smallest, min_crop):
            groups.append((len(current), (max_h, max_w)))
            current, h, w = [], height, width
        if not current:
            smallest = height * width
        current.append(i)
        max_h, max_w = h, w
    if current:
        groups.append((len(current), (max_h, max_w)))
    if not groups:
        return []
    order_on_device = torch.tensor(order, dtype=torch.long, device=boxes.device)
    result, start = [], 0
    for length, crop_size in groups:
        result.append((order_on_device[start:start + length], crop_size))
        start += length
    return result


DISTANCE_BACKENDS = ('auto', 'opencv', 'torch')

#: A group's crops: (k,) int64 mask indices and their crop size (hc, wc).
Group = Tuple[Tensor, Tuple[int, int]]


class OpenCVDistances:
    """The miner's distance transforms with OpenCV, on a host copy of the
    (N, H, W) bool masks and their (N, 4) int64 inclusive xyxy tight boxes
    (one copy of each per call of the miner); results go back to the masks'
    device.  On the CPU the copy is free and OpenCV is the fastest."""

    def __init__(self, masks: Tensor, tight: Tensor) -> None:
        self.device = masks.device
        self.masks = masks.cpu().numpy()
        self.tight = tight.cpu().numpy()

    def box_crops(self, index: Tensor, crop_size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """(k, hc, wc) float32 distances and (k, 2) int64 peaks of the (k,)
        masks ``index`` (:func:`~.distance.distance_box_crops`; ``crop_size``
        is not needed)."""
        crops, peaks = distance_box_crops(self.masks, self.tight, index.cpu().numpy())
        return torch.from_numpy(crops).to(self.device), torch.from_numpy(peaks).to(self.device)

    def farthest_background(self, groups: List[Group]) -> Tuple[Tensor, Tensor]:
        """(N, 2) int64 points and (N,) bool found, for all masks at once
        (:func:`~.distance.farthest_background_in_box`; mask by mask, so the
        groups do not matter)."""
        points, found = farthest_background_in_box(self.masks, self.tight)
        return torch.from_numpy(points).to(self.device), torch.from_numpy(found).to(self.device)


class TorchDistances:
    """The miner's distance transforms in torch, on the device of the
    (N, H, W) bool masks, batched over each group's box crops; no copy of
    the masks leaves the device (:func:`~.distance.distance_box_crops_torch`,
    the same results as :class:`OpenCVDistances` bit for bit)."""

    def __init__(self, masks: Tensor, tight: Tensor) -> None:
        self.masks = masks
        self.tight = tight

    def box_crops(self, index: Tensor, crop_size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """(k, hc, wc) float32 distances and (k, 2) int64 peaks of the (k,)
        masks ``index``, whose crop size is ``crop_size`` (hc, wc)."""
        return distance_box_crops_torch(self.masks, self.tight, index, crop_size)

    def farthest_background(self, groups: List[Group]) -> Tuple[Tensor, Tensor]:
        """(N, 2) int64 points and (N,) bool found, group by group."""
        n, device = len(self.masks), self.masks.device
        points = torch.zeros((n, 2), dtype=torch.long, device=device)
        found = torch.zeros(n, dtype=torch.bool, device=device)
        for index, crop_size in groups:
            points[index], found[index] = farthest_background_in_box_torch(
                self.masks, self.tight, index, crop_size)
        return points, found


Distances = Union[OpenCVDistances, TorchDistances]


class PromptMiner:
    """Mine SAMRefiner's prompts from a batch of masks of one image.

    Args:
        encoder_size: side of SAM's square encoder input
            (``sam.image_encoder.img_size``).
        low_res_size: SAM's mask-input size
            (``sam.prompt_encoder.mask_input_size``).
        use_point, use_box, use_mask, add_neg: which prompts to produce.
        elastic_margin: the elastic box's threshold lambda; 0 keeps the
            tight box.
        box_geometry: the elastic box's steps and strips, ``'symmetric'``
            or ``'authors'`` (see :func:`elastic_boxes`).
        gamma: Gaussian span of the mask prompt.
        strength: amplitude of the mask prompt (1 for expanded boxes).
        distance_backend: where the exact distance transforms run (the same
            prompts either way): ``'opencv'`` on a host copy of the masks
            (:class:`OpenCVDistances`), ``'torch'`` on the masks' device
            (:class:`TorchDistances`), ``'auto'`` (default) OpenCV for masks
            on the CPU, where it is far faster, torch elsewhere.  Not a
            result setting (:meth:`settings`); may be set on the attribute.
    """

    def __init__(self, encoder_size: int, low_res_size: Tuple[int, int],
                 use_point: bool = True, use_box: bool = True,
                 use_mask: bool = True, add_neg: bool = True,
                 elastic_margin: float = 0.0, gamma: float = 4.0,
                 strength: float = 30.0, box_geometry: str = 'authors',
                 distance_backend: str = 'auto') -> None:
        if not 0 <= elastic_margin < 1:
            raise ValueError(f'elastic_margin must be in [0, 1), got {elastic_margin}')
        if box_geometry not in BOX_GEOMETRIES:
            raise ValueError(f'box_geometry must be one of {BOX_GEOMETRIES}, '
                             f'got {box_geometry!r}')
        if gamma <= 0 or strength <= 0:
            raise ValueError(f'gamma and strength must be positive, got '
                             f'gamma={gamma}, strength={strength}')
        if not (use_point or use_box or use_mask):
            raise ValueError('at least one of use_point, use_box, use_mask '
                             'must be True')
        self.encoder_size = encoder_size
        self.low_res_size = tuple(low_res_size)
        self.use_point = use_point
        self.use_box = use_box
        self.use_mask = use_mask
        self.add_neg = add_neg
        self.elastic_margin = elastic_margin
        self.box_geometry = box_geometry
        self.gamma = gamma
        self.strength = strength
        self.distance_backend = distance_backend

    @property
    def distance_backend(self) -> str:
        """``'auto'``, ``'opencv'`` or ``'torch'`` (see the class); settable."""
        return self._distance_backend

    @distance_backend.setter
    def distance_backend(self, value: str) -> None:
        if value not in DISTANCE_BACKENDS:
            raise ValueError(f'distance_backend must be one of {DISTANCE_BACKENDS}, '
                             f'got {value!r}')
        self._distance_backend = value

    def __call__(self, masks: Tensor,
                 image_embedding: Optional[Tensor] = None,
                 input_size: Optional[Tuple[int, int]] = None,
                 valid_grid: Optional[Tuple[int, int]] = None) -> Prompts:
        """Prompts for (N, H, W) bool masks (non-empty) of one image.

        ``image_embedding`` ((C, h, w) or (1, C, h, w)) is needed only for the
        elastic box (``elastic_margin > 0``).  ``input_size``: (h, w) of the image
        inside the encoder square, which places the mask prompt (default:
        SAM's, longest side = ``encoder_size``); ``valid_grid``: see
        :func:`context_similarity`.
        """
        tight = masks_to_boxes(masks)
        boxes, expanded = self.box_prompts(masks, tight, image_embedding, valid_grid)
        groups, distances = [], None
        if self.use_point or self.use_mask:
            groups = size_groups_and_crops(tight)
            distances = self.distances(masks, tight)
        peaks, mask_inputs = self.peaks_and_mask_prompts(masks, tight, groups, distances,
                                                         expanded, input_size)
        points, labels = self.point_prompts(peaks, groups, distances)
        return Prompts(
            points=points,
            labels=labels,
            boxes=boxes.float() if self.use_box else None,
            mask_inputs=mask_inputs,
            expanded=expanded)

    def box_prompts(self, masks: Tensor, tight: Tensor, image_embedding: Optional[Tensor],
                    valid_grid: Optional[Tuple[int, int]]) -> Tuple[Tensor, Tensor]:
        """``(boxes, expanded)``: the (N, 4) int64 inclusive xyxy tight boxes
        ``tight`` of the (N, H, W) masks (original image frame), grown by the
        elastic box when it is on (``use_box`` and ``elastic_margin > 0``:
        :func:`elastic_boxes`), and (N,) bool, True where a box grew."""
        expanded = torch.zeros(len(masks), dtype=torch.bool, device=masks.device)
        if not (self.use_box and self.elastic_margin > 0):
            return tight, expanded
        if image_embedding is None:
            raise ValueError('the elastic box (elastic_margin > 0) needs the image '
                             'embedding')
        embedding = image_embedding.reshape(image_embedding.shape[-3:])
        return elastic_boxes(masks, tight, embedding.to(masks.device), self.elastic_margin,
                             valid_grid, self.box_geometry)

    def distances(self, masks: Tensor, tight: Tensor) -> Distances:
        """The distance transforms of the (N, H, W) bool masks and their
        (N, 4) int64 tight boxes: an :class:`OpenCVDistances` or a
        :class:`TorchDistances`, as ``distance_backend`` says."""
        backend = self.distance_backend
        if backend == 'auto':
            backend = 'opencv' if masks.device.type == 'cpu' else 'torch'
        return (TorchDistances if backend == 'torch' else OpenCVDistances)(masks, tight)

    def peaks_and_mask_prompts(self, masks: Tensor, tight: Tensor, groups: List[Group],
                               distances: Optional[Distances], expanded: Tensor,
                               input_size: Optional[Tuple[int, int]]
                               ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """``(peaks, mask_inputs)``: each mask's positive point, (N, 2) int64
        xy in the original image frame (None unless ``use_point`` or
        ``use_mask``), and its Gaussian mask prompt, (N, 1, h, w) float32 in
        SAM's low-res mask-input frame (None unless ``use_mask``; amplitude 1
        where ``expanded``).

        Distances and mask prompts are computed on box crops, in groups of
        similar box size (:func:`size_groups`) so that no crop is padded to
        far more than its own box.

        Args:
            masks: (N, H, W) bool, original image frame.
            tight: (N, 4) int64 inclusive xyxy tight boxes.
            groups: the masks in groups of similar box size, with their crop
                sizes (:func:`size_groups_and_crops`).
            distances: the masks' distance transforms (:meth:`distances`).
            expanded: (N,) bool, True where the elastic box grew the box.
            input_size: see :meth:`__call__`.
        """
        if not (self.use_point or self.use_mask):
            return None, None
        n, height, width = masks.shape
        device = masks.device
        peaks = torch.zeros((n, 2), dtype=torch.long, device=device)
        mask_inputs = None
        if self.use_mask:
            mask_inputs = torch.empty((n, 1) + self.low_res_size, device=device)
            amplitude = torch.where(expanded, 1.0, float(self.strength))
            input_size = input_size or resized_shape(height, width, self.encoder_size)
        for index, crop_size in groups:
            dist_crops, peaks[index] = distances.box_crops(index, crop_size)
            if self.use_mask:
                mask_inputs[index] = gaussian_mask_prompts(
                    box_crops(masks, tight, index, crop_size), dist_crops, tight[index],
                    amplitude[index], self.gamma, (height, width), input_size,
                    self.encoder_size, self.low_res_size)
        return peaks, mask_inputs

    def point_prompts(self, peaks: Optional[Tensor], groups: List[Group],
                      distances: Optional[Distances]
                      ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """``(points, labels)``: (N, K, 2) float32 xy, original image frame,
        and (N, K) int64 (:class:`Prompts`), from the (N, 2) positive points
        ``peaks`` and, with ``add_neg``, the farthest background pixel in
        each mask's tight box (``distances.farthest_background``, over the
        size ``groups``; label -1 where the box holds no background);
        ``(None, None)`` unless ``use_point``."""
        if not self.use_point:
            return None, None
        n, device = len(peaks), peaks.device
        coords = [peaks]
        labels = [torch.ones(n, dtype=torch.long, device=device)]
        if self.add_neg:
            neg, found = distances.farthest_background(groups)
            coords.append(neg)
            labels.append(torch.where(found, 0, -1))
        return torch.stack(coords, 1).float(), torch.stack(labels, 1)

    def settings(self) -> Dict[str, Any]:
        """The settings the prompts depend on (the sizes aside), by name."""
        return dict(use_point=bool(self.use_point), use_box=bool(self.use_box),
                    use_mask=bool(self.use_mask), add_neg=bool(self.add_neg),
                    elastic_margin=float(self.elastic_margin), box_geometry=self.box_geometry,
                    gamma=float(self.gamma), strength=float(self.strength))

    def __repr__(self) -> str:
        settings = dict(self.settings(), distance_backend=self.distance_backend)
        settings = ', '.join(f'{name}={value!r}' for name, value in settings.items())
        return f'{self.__class__.__name__}({settings})'

