# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask helpers shared across the package (numpy; torch imported where a
tensor is made)."""
from typing import List, Tuple

import numpy as np


def match_masks(pred: np.ndarray, gt: np.ndarray) -> List[Tuple[int, int]]:
    """Greedy one-to-one pairs ``(pred index, gt index)`` by decreasing IoU."""
    if len(pred) == 0 or len(gt) == 0:
        return []
    p, g = pred.reshape(len(pred), -1).astype(np.float32), gt.reshape(len(gt), -1).astype(
        np.float32)
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None] - inter
    iou = inter / np.maximum(union, 1)
    pairs, used_p, used_g = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind='stable'):
        i, j = divmod(int(flat), len(gt))
        if i in used_p or j in used_g or iou[i, j] <= 0:
            continue
        pairs.append((i, j))
        used_p.add(i)
        used_g.add(j)
    return pairs


def as_bool_tensor(masks):
    """(N, H, W) bool tensor of instance masks given as a tensor (any dtype,
    kept on its device) or as mmdet's ``BitmapMasks`` / ``PolygonMasks``
    (anything with ``to_ndarray()``; on the CPU)."""
    import torch
    if not isinstance(masks, torch.Tensor):
        masks = torch.from_numpy(masks.to_ndarray())
    return masks.bool()
