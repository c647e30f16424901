# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefiner's prompt mining and candidate upscaling done the direct way: one
mask at a time, on full-size maps, as the authors' code does.

Not used by :class:`~mmsamrefiner.refiner.SAMRefiner`.  It is the baseline of
``tools/benchmark_speed.py`` (the same algorithm, mined mask by mask) and, in
the tests, a second implementation that the batched, box-restricted code
(:mod:`mmsamrefiner.refiner.prompts`, :mod:`mmsamrefiner.refiner.resize`) must
agree with.  Per mask and round it runs two whole-image distance transforms,
builds the Gaussian on the whole image and resizes both maps with
``F.interpolate`` through SAM's encoder frame; all candidates are upsampled to
the image before one is chosen.

Frames as in :mod:`mmsamrefiner.refiner.prompts`: masks (N, H, W) bool in the
original image frame, points xy and boxes xyxy in its pixel indices, mask
prompts in SAM's low-res mask-input frame.
"""
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmsamrefiner.refiner.distance import exact_distance
from mmsamrefiner.refiner.prompts import PromptMiner, Prompts, context_similarity


def full_image_distance(binary: np.ndarray) -> np.ndarray:
    """:func:`~mmsamrefiner.refiner.distance.exact_distance` of a whole (H, W)
    bool map (pixels outside the image are not zero)."""
    return exact_distance(binary.view(np.uint8))


def to_mask_input_frame(maps: Tensor, input_size: Tuple[int, int], encoder_size: int,
                        low_res_size: Tuple[int, int], pad_value: float) -> Tensor:
    """(C, H, W) maps, original frame -> (C, h, w) in SAM's mask-input frame:
    bilinear to ``input_size``, padded with ``pad_value`` to the encoder's
    square (right and bottom), bilinear to ``low_res_size``."""
    resized = F.interpolate(maps[None], input_size, mode='bilinear', align_corners=False)
    padded = F.pad(resized, (0, encoder_size - input_size[1], 0, encoder_size - input_size[0]),
                   value=pad_value)
    return F.interpolate(padded, low_res_size, mode='bilinear', align_corners=False)[0]


def elastic_box_one_mask(sim: np.ndarray, box: np.ndarray, elastic_margin: float,
                         geometry: str) -> Tuple[np.ndarray, bool]:
    """The elastic box of one mask, side by side in plain Python.

    Args:
        sim: (H, W) bool, the pixels similar to the mask
            (:func:`~mmsamrefiner.refiner.prompts.context_similarity`).
        box: (4,) int xyxy inclusive, the mask's tight box.
        elastic_margin: the threshold lambda.
        geometry: ``'symmetric'`` or ``'authors'``, as in
            :func:`~mmsamrefiner.refiner.prompts.elastic_boxes`.

    Returns:
        the grown (4,) int64 xyxy box and whether it grew.
    """
    height, width = sim.shape
    x1, y1, x2, y2 = (int(v) for v in box)
    final = [x1, y1, x2, y2]
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return np.array(final, np.int64), False
    step_x, step_y = min((x2 - x1) * 0.1, 10), min((y2 - y1) * 0.1, 10)

    def similar_enough(rows: slice, cols: slice) -> bool:
        strip = sim[rows, cols]
        return strip.sum() / strip.size > elastic_margin

    if geometry == 'symmetric':
        sx, sy = int(np.floor(step_x)), int(np.floor(step_y))
        # (side index, new value, strip rows, strip columns, new value inside the image)
        sides = [(0, x1 - sx, slice(y1, y2 + 1), slice(x1 - sx, x1), sx > 0 and x1 - sx >= 0),
                 (2, x2 + sx, slice(y1, y2 + 1), slice(x2 + 1, x2 + sx + 1),
                  sx > 0 and x2 + sx < width),
                 (1, y1 - sy, slice(y1 - sy, y1), slice(x1, x2 + 1), sy > 0 and y1 - sy >= 0),
                 (3, y2 + sy, slice(y2 + 1, y2 + sy + 1), slice(x1, x2 + 1),
                  sy > 0 and y2 + sy < height)]
    elif geometry == 'authors':
        left, right = int(x1 - step_x), int(x2 + step_x)
        top, bottom = int(y1 - step_y), int(y2 + step_y)
        sides = [(0, left, slice(y1, y2), slice(left, x1), 0 < left < x1),
                 (2, right, slice(y1, y2), slice(x2, right), x2 < right < width),
                 (1, top, slice(top, y1), slice(x1, x2), 0 < top < y1),
                 (3, bottom, slice(y2, bottom), slice(x1, x2), y2 < bottom < height)]
    else:
        raise ValueError(f"geometry must be 'symmetric' or 'authors', got {geometry!r}")
    grew = False
    for side, value, rows, cols, allowed in sides:
        if allowed and similar_enough(rows, cols):
            final[side] = value
            grew = True
    return np.array(final, np.int64), grew


def mine_one_mask(mask: np.ndarray, miner: PromptMiner, input_size: Tuple[int, int],
                  image_embedding: Optional[Tensor] = None,
                  valid_grid: Optional[Tuple[int, int]] = None) -> dict:
    """The prompts of one non-empty (H, W) bool mask, with ``miner``'s settings.

    Returns:
        dict of ``point`` (2,) and ``neg_point`` (2,) int64 xy, ``neg_found``
        bool, ``box`` (4,) int64 xyxy, ``expanded`` bool and ``mask_input``
        (1, h, w) float32 (None when the miner makes no mask prompt).
    """
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.int64)
    out = dict(box=box, expanded=False, mask_input=None)
    if miner.use_box and miner.elastic_margin > 0:
        sim = context_similarity(torch.from_numpy(mask)[None],
                                 image_embedding.reshape(image_embedding.shape[-3:]),
                                 valid_grid=valid_grid)[0].numpy()
        grown, expanded = elastic_box_one_mask(sim, box, miner.elastic_margin, miner.box_geometry)
        out.update(box=grown, expanded=expanded)

    dist = full_image_distance(mask)
    flat = int(dist.argmax())
    out['point'] = np.array([flat % width, flat // width], np.int64)
    outside = full_image_distance(~mask)
    x1, y1, x2, y2 = box
    in_box = np.zeros_like(mask)
    in_box[y1:y2 + 1, x1:x2 + 1] = True
    outside[~in_box] = 0
    flat = int(outside.argmax())
    out['neg_found'] = bool(outside.flat[flat] > 0)
    out['neg_point'] = (np.array([flat % width, flat // width], np.int64)
                        if out['neg_found'] else np.zeros(2, np.int64))

    if miner.use_mask:
        span = max(mask.sum() / miner.gamma, 1.0)
        gauss = np.where(mask, np.exp(-np.square(dist - dist.max()) / span), 0.0)
        signed = torch.from_numpy(np.where(mask, 1.0, -1.0).astype(np.float32))
        low = to_mask_input_frame(signed[None], input_size, miner.encoder_size,
                                  miner.low_res_size, -1.0)
        low_gauss = to_mask_input_frame(torch.from_numpy(gauss.astype(np.float32))[None],
                                        input_size, miner.encoder_size, miner.low_res_size, 0.0)
        low_gauss = torch.where(low_gauss > 0, low_gauss, torch.ones_like(low_gauss))
        amplitude = 1.0 if out['expanded'] else float(miner.strength)
        out['mask_input'] = torch.where(low > 0, 1.0, -1.0) * amplitude * low_gauss
    return out


def mine_mask_by_mask(masks: Tensor, miner: PromptMiner, input_size: Tuple[int, int],
                      image_embedding: Optional[Tensor] = None,
                      valid_grid: Optional[Tuple[int, int]] = None) -> Prompts:
    """:class:`~mmsamrefiner.refiner.prompts.PromptMiner`'s prompts for (N, H,
    W) bool non-empty masks, mined one mask at a time on full-size maps (the
    reference's way).

    ``input_size``: (h, w) of the image inside the encoder square;
    ``image_embedding`` ((C, h, w) or (1, C, h, w)) and ``valid_grid`` are
    needed only for the elastic box.
    """
    device = masks.device
    if miner.use_box and miner.elastic_margin > 0:
        if image_embedding is None:
            raise ValueError('the elastic box (elastic_margin > 0) needs the image embedding')
        image_embedding = image_embedding.cpu()
    parts = [mine_one_mask(mask, miner, tuple(input_size), image_embedding, valid_grid)
             for mask in masks.cpu().numpy()]
    if not parts:
        raise ValueError('mine_mask_by_mask needs at least one mask')

    def stack(key, dtype=None):
        return torch.from_numpy(np.stack([p[key] for p in parts])).to(device, dtype)

    points = labels = None
    if miner.use_point:
        points, labels = [stack('point')], [torch.ones(len(parts), dtype=torch.long)]
        if miner.add_neg:
            points.append(stack('neg_point'))
            labels.append(torch.tensor([0 if p['neg_found'] else -1 for p in parts]))
        points = torch.stack(points, 1).float()
        labels = torch.stack(labels, 1).to(device)
    return Prompts(
        points=points,
        labels=labels,
        boxes=stack('box').float() if miner.use_box else None,
        mask_inputs=(torch.stack([p['mask_input'] for p in parts]).to(device)
                     if miner.use_mask else None),
        expanded=stack('expanded'))


def upscale_all_then_select(low_res_logits: Tensor, ious: Tensor,
                            encoder_size: Optional[int], input_size: Tuple[int, int],
                            original_size: Tuple[int, int], threshold: float = 0.0,
                            chunk: int = 8) -> Tensor:
    """SAM's ``postprocess_masks`` on every candidate, then the best one each.

    Args:
        low_res_logits: (N, M, h, w) decoder logits (encoder-input frame).
        ious: (N, M) predicted IoUs; the highest picks the candidate.
        encoder_size: side of the encoder square the logits are first resized
            to (then cropped to ``input_size``); None: resized straight to the
            image (SAM 2).
        chunk: masks upsampled at a time (the full-size candidates of all
            masks at once would take N * M * H * W floats).

    Returns:
        (N, H, W) bool, original image frame.
    """
    best = ious.argmax(1)
    out = []
    for start in range(0, len(low_res_logits), chunk):
        logits = low_res_logits[start:start + chunk]
        if encoder_size is not None:
            logits = F.interpolate(logits, (encoder_size, encoder_size), mode='bilinear',
                                   align_corners=False)
            logits = logits[..., :input_size[0], :input_size[1]]
        logits = F.interpolate(logits, tuple(original_size), mode='bilinear',
                               align_corners=False)
        masks = logits > threshold
        pick = best[start:start + chunk]
        out.append(masks[torch.arange(len(pick), device=masks.device), pick])
    if not out:
        return low_res_logits.new_zeros((0, ) + tuple(original_size), dtype=torch.bool)
    return torch.cat(out)
