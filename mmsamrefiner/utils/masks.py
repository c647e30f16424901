# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask helpers shared by the datasets and the evaluation (numpy only)."""
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
