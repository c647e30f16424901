# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Split-then-merge (STM): semantic label maps <-> instance masks.

SAM segments one object per prompt set, so a class mask with several objects is
first *split* into 8-connected fragments, fragments that look like parts of one
object are greedily *merged* into instances, the instances are refined, and the
refined instances are *merged back* into one label map.

All frames are the original image frame; boxes are xyxy inclusive pixel indices.
"""
from typing import Sequence, Tuple

import cv2
import numpy as np


def group_fragments(boxes: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Greedily group fragments that look like parts of one object.

    Fragments are visited in order; fragment ``i``'s group absorbs the group of
    each later fragment ``j`` when, with ``box`` the area of a group's box,
    ``merged`` the area of the box around both groups and ``fill = mask area /
    box area``::

        box_i + box_j > 0.5 * merged   and
        (area_i + area_j) / merged > min(0.5, min(fill_i, fill_j) - 0.1)

    A group's box and area are updated after each merge.  The tests run on
    boxes and areas only, never on full-size masks.

    Args:
        boxes: (C, 4) int xyxy inclusive boxes of the fragments.
        areas: (C,) pixel counts of the fragments.

    Returns:
        (C,) int64: the group of each fragment, named by its first fragment.
    """
    count = len(boxes)
    group = np.arange(count)
    group_box = [tuple(int(v) for v in b) for b in boxes]
    group_area = [int(a) for a in areas]
    for i in range(count):
        gi = group[i]
        for j in range(i + 1, count):
            gj = group[j]
            if gi == gj:
                continue
            ax1, ay1, ax2, ay2 = group_box[gi]
            bx1, by1, bx2, by2 = group_box[gj]
            box_i = (ax2 - ax1 + 1) * (ay2 - ay1 + 1)
            box_j = (bx2 - bx1 + 1) * (by2 - by1 + 1)
            union = (min(ax1, bx1), min(ay1, by1), max(ax2, bx2), max(ay2, by2))
            merged = (union[2] - union[0] + 1) * (union[3] - union[1] + 1)
            fill = min(group_area[gi] / box_i, group_area[gj] / box_j)
            if (box_i + box_j > 0.5 * merged and
                    (group_area[gi] + group_area[gj]) / merged > min(0.5, fill - 0.1)):
                group[group == gj] = gi
                group_box[gi] = union
                group_area[gi] += group_area[gj]
    return group


def split_class_mask(class_mask: np.ndarray, min_area: int = 5) -> np.ndarray:
    """Split one class's (H, W) bool mask into instance masks (M, H, W) bool.

    Fragments are 8-connected components; those under ``min_area`` pixels are
    dropped; the rest are grouped by :func:`group_fragments`.
    """
    num, labels, stats, _ = cv2.connectedComponentsWithStats(
        class_mask.astype(np.uint8), connectivity=8)
    stats = stats[1:]  # row 0 is the background
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= min_area)
    height, width = class_mask.shape
    if len(keep) == 0:
        return np.zeros((0, height, width), bool)
    x, y = stats[keep, cv2.CC_STAT_LEFT], stats[keep, cv2.CC_STAT_TOP]
    boxes = np.stack([x, y, x + stats[keep, cv2.CC_STAT_WIDTH] - 1,
                      y + stats[keep, cv2.CC_STAT_HEIGHT] - 1], 1)
    group = group_fragments(boxes, stats[keep, cv2.CC_STAT_AREA])
    roots, instance_of_kept = np.unique(group, return_inverse=True)
    lut = np.full(num, -1, np.int64)  # component label -> instance index
    lut[keep + 1] = instance_of_kept
    instance_map = lut[labels]
    return instance_map[None] == np.arange(len(roots))[:, None, None]


def split_then_merge(label_map: np.ndarray, classes: Sequence[int],
                     min_area: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """Split the given classes of an (H, W) label map into instances.

    Returns:
        ``(masks, classes)``: (M, H, W) bool instance masks and (M,) int64
        class ids, in the order of ``classes``.
    """
    masks, labels = [], []
    for cls in classes:
        instances = split_class_mask(label_map == cls, min_area)
        masks.append(instances)
        labels.append(np.full(len(instances), cls, np.int64))
    if not masks:
        return np.zeros((0,) + label_map.shape, bool), np.zeros(0, np.int64)
    return np.concatenate(masks), np.concatenate(labels)


def merge_instances(label_map: np.ndarray, masks: np.ndarray,
                    classes: np.ndarray, scores: np.ndarray,
                    refined_classes: Sequence[int],
                    background: int = 0) -> np.ndarray:
    """Write refined instances back into a label map.

    Pixels of ``refined_classes`` are cleared to ``background``; each instance
    then claims its pixels that are ``background``, the highest score winning
    an overlap (ties: lower class id, then lower index).  Pixels of other
    classes (and ignored pixels) are kept as they were.

    Args:
        label_map: (H, W) integer class ids.
        masks: (M, H, W) bool refined instances.
        classes: (M,) class of each instance.
        scores: (M,) predicted IoU of each instance.
        refined_classes: the classes that were split and refined.
        background: the label of unclaimed pixels.

    Returns:
        (H, W) label map of ``label_map``'s dtype.
    """
    if background in set(int(c) for c in refined_classes):
        raise ValueError(f'the background label {background} cannot be refined')
    out = label_map.copy()
    out[np.isin(label_map, list(refined_classes))] = background
    if len(masks) == 0:
        return out
    order = np.lexsort((np.arange(len(masks)), classes, -np.asarray(scores)))
    masks, classes = masks[order], np.asarray(classes)[order]
    claimed = masks.any(0) & (out == background)
    winner = masks.argmax(0)  # first True in priority order
    out[claimed] = classes[winner[claimed]].astype(out.dtype)
    return out
