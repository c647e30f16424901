# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Per-mask signals for deciding which refined masks to trust.

Besides SAM's predicted IoU of the kept candidate (``RefineResult.scores``),
two measures a user can filter pseudo-labels by:

* :func:`stability_scores`: SAM's stability score of the kept candidate, the
  IoU between its mask thresholded ``offset`` above and ``offset`` below the
  mask threshold (segment_anything's automatic mask generator uses 1.0).
  Taken on the candidate's low-res logits, within the part of the low-res
  frame that covers the image (the padding of the encoder's square left
  out): SAM 2 takes it at this resolution too, and it costs no upsampling.
* :func:`pairwise_iou`: the IoU between each refined mask and its own coarse
  mask (how much refinement changed it).

:func:`class_signals` gathers them per class for a refined label map.
Every signal is 0 for an empty coarse mask (nothing was refined).
"""
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .bool_ops import count_along

#: SAM's stability offset (the logit margin on each side of the threshold)
STABILITY_OFFSET = 1.0


def low_res_valid_size(low_res_size: Tuple[int, int], encoder_size: int,
                       input_size: Tuple[int, int]) -> Tuple[int, int]:
    """(rows, cols) of the low-res frame that cover the image: the resized
    image occupies ``input_size`` (h, w) at the top-left of the encoder's
    ``encoder_size`` square, which the (h', w') ``low_res_size`` spans."""
    low_h, low_w = low_res_size
    rows = -(-input_size[0] * low_h // encoder_size)  # ceil
    cols = -(-input_size[1] * low_w // encoder_size)
    return max(1, min(rows, low_h)), max(1, min(cols, low_w))


def stability_scores(low_res_logits: Tensor, mask_threshold: float,
                     valid_size: Tuple[int, int],
                     offset: float = STABILITY_OFFSET) -> Tensor:
    """SAM's stability score of each of N candidates.

    Args:
        low_res_logits: (N, h, w) mask logits, low-res encoder frame.
        mask_threshold: the logit a mask is cut at.
        valid_size: (rows, cols) at the top-left that cover the image
            (:func:`low_res_valid_size`).
        offset: the margin on each side of the threshold.

    Returns:
        (N,) float32: |logit > t + offset| / |logit > t - offset|, 0 where
        no cell is above ``t - offset``.
    """
    rows, cols = valid_size
    logits = low_res_logits[:, :rows, :cols].flatten(1)
    inner = count_along(logits > mask_threshold + offset, 1)
    outer = count_along(logits > mask_threshold - offset, 1)
    return torch.where(outer > 0, inner / outer.clamp(min=1), 0).float()


def pairwise_iou(masks: Tensor, others: Tensor) -> Tensor:
    """(N,) float32 IoU of each (H, W) bool mask of ``masks`` with the mask of
    the same index in ``others`` (both (N, H, W)); 0 where both are empty."""
    a, b = masks.flatten(1), others.flatten(1)
    inter = count_along(a & b, 1)
    union = count_along(a | b, 1)
    return torch.where(union > 0, inter / union.clamp(min=1), 0).float()


#: the columns of :func:`class_signals`' table, in order
CLASS_COLUMNS = ('class', 'instances', 'coarse_pixels', 'refined_pixels', 'coarse_iou',
                 'score', 'stability')


def class_signals(coarse_map: np.ndarray, refined_map: np.ndarray, classes: Sequence[int],
                  instance_classes: np.ndarray, scores: np.ndarray,
                  stability: np.ndarray) -> Dict[str, np.ndarray]:
    """The signals of a refined label map, one row per refined class.

    Args:
        coarse_map, refined_map: (H, W) integer label maps (before and after).
        classes: the refined classes.
        instance_classes, scores, stability: (M,) class, predicted IoU and
            stability score of each refined instance.

    Returns:
        A table (column -> (len(classes),) array, :data:`CLASS_COLUMNS`):
        ``class``; ``instances``, how many instances SAM refined;
        ``coarse_pixels``, ``refined_pixels``; ``coarse_iou``, the IoU of the
        class's refined and coarse masks (0 when both are empty); ``score``
        and ``stability``, the lowest of the class's instances (0 without
        one).
    """
    classes = np.asarray(list(classes), np.int64)
    table = {name: np.zeros(len(classes), np.int64 if index < 4 else np.float32)
             for index, name in enumerate(CLASS_COLUMNS)}
    table['class'] = classes
    for row, cls in enumerate(classes):
        coarse, refined = coarse_map == cls, refined_map == cls
        union = int((coarse | refined).sum())
        table['coarse_pixels'][row] = int(coarse.sum())
        table['refined_pixels'][row] = int(refined.sum())
        table['coarse_iou'][row] = (coarse & refined).sum() / union if union else 0.0
        mine = np.asarray(instance_classes) == cls
        table['instances'][row] = int(mine.sum())
        if mine.any():
            table['score'][row] = float(np.min(scores[mine]))
            table['stability'][row] = float(np.min(stability[mine]))
    return table
