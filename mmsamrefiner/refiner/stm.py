# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Split-then-merge (STM): semantic label maps <-> instance masks.

SAM segments one object per prompt set, so a class mask with several objects is
first *split* into 8-connected fragments, fragments that look like parts of one
object are greedily *merged* into instances, the instances are refined, and the
refined instances are *merged back* into one label map.

An instance that holds several objects (objects that touch form one fragment;
the grouping rule also joins separate nearby objects) comes back from SAM as
one of them.  :func:`residual_fragments` finds what the refined instances left
out of each class's mask, so that it can be refined as instances of its own
(``SAMRefiner(stm='residual')``, docs/method.md).

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


def fragments(class_mask: np.ndarray, min_area: int = 5
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected fragments of an (H, W) bool mask with at least
    ``min_area`` pixels.

    Returns:
        ``(labels, boxes, areas)``: (H, W) int32 map of fragment ids (0: no
        fragment, ``k`` the ``k``-th kept fragment, in OpenCV's scan order),
        (C, 4) int xyxy inclusive boxes and (C,) pixel counts.
    """
    num, labels, stats, _ = cv2.connectedComponentsWithStats(
        class_mask.astype(np.uint8), connectivity=8)
    stats = stats[1:]  # row 0 is the background
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= min_area)
    lut = np.zeros(num, np.int32)  # component label -> kept fragment id
    lut[keep + 1] = np.arange(1, len(keep) + 1)
    x, y = stats[keep, cv2.CC_STAT_LEFT], stats[keep, cv2.CC_STAT_TOP]
    boxes = np.stack([x, y, x + stats[keep, cv2.CC_STAT_WIDTH] - 1,
                      y + stats[keep, cv2.CC_STAT_HEIGHT] - 1], 1).reshape(-1, 4)
    return lut[labels], boxes, stats[keep, cv2.CC_STAT_AREA]


def split_class_mask(class_mask: np.ndarray, min_area: int = 5) -> np.ndarray:
    """Split one class's (H, W) bool mask into instance masks (M, H, W) bool.

    Fragments are 8-connected components; those under ``min_area`` pixels are
    dropped; the rest are grouped by :func:`group_fragments`.
    """
    labels, boxes, areas = fragments(class_mask, min_area)
    height, width = class_mask.shape
    if len(areas) == 0:
        return np.zeros((0, height, width), bool)
    group = group_fragments(boxes, areas)
    roots, instance_of_fragment = np.unique(group, return_inverse=True)
    lut = np.concatenate([[-1], instance_of_fragment])  # fragment id -> instance
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


def residual_fragments(label_map: np.ndarray, classes: Sequence[int],
                       covered: np.ndarray, opening: int = 2,
                       min_area: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """The parts of each class's mask that no refined instance covers.

    For each class ``c`` of ``classes``: ``(label_map == c) & ~covered``,
    opened with a disk of radius ``opening`` pixels (slivers narrower than
    ``2 * opening + 1`` pixels go: boundary disagreements between the coarse
    and the refined masks, not objects), split into 8-connected fragments;
    each fragment of at least ``min_area`` pixels is one instance (fragments
    are not grouped: grouping is what joined the objects that got lost).

    Args:
        label_map: (H, W) integer class ids.
        classes: the classes to look at.
        covered: (H, W) bool, the pixels refined instances hold.
        opening: radius of the opening's disk (0: no opening).
        min_area: the smallest fragment kept (pixels, after the opening).

    Returns:
        ``(masks, classes)``: (M, H, W) bool instance masks and (M,) int64
        class ids, in the order of ``classes``.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * opening + 1,) * 2)
    masks, labels = [], []
    for cls in classes:
        residual = ((label_map == cls) & ~covered).astype(np.uint8)
        if opening > 0:
            residual = cv2.morphologyEx(residual, cv2.MORPH_OPEN, kernel)
        ids, _, areas = fragments(residual, min_area)
        masks.append(ids[None] == np.arange(1, len(areas) + 1)[:, None, None])
        labels.append(np.full(len(areas), cls, np.int64))
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
