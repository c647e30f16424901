# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The per-mask signals: stability scores, IoU with the coarse mask, the
class table of a label map, and what refine / refine_label_map return."""
import numpy as np
import pytest
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.signals import (
    CLASS_COLUMNS,
    class_signals,
    low_res_valid_size,
    pairwise_iou,
    stability_scores,
)


def test_stability_counts_cells_above_the_threshold_plus_and_minus_the_offset():
    logits = torch.full((3, 4, 5), -5.0)
    logits[0, 0, :4] = torch.tensor([2.0, 0.5, -0.5, 1.5])  # > 1: 2 cells, > -1: 4 cells
    logits[1, 0, 0] = 3.0  # one cell, far from the threshold: fully stable
    logits[1, 3, 4] = 0.5  # outside the valid (3, 4) window: not counted
    # logits[2]: nothing above -1: 0
    scores = stability_scores(logits, 0.0, valid_size=(3, 4))
    assert scores.dtype == torch.float32
    np.testing.assert_array_equal(scores.numpy(), [0.5, 1.0, 0.0])
    # the threshold moves the band: at 1.0, > 2: 0 cells, > 0: 3 cells
    assert stability_scores(logits[:1], 1.0, (3, 4)).item() == 0.0
    assert stability_scores(logits[:1], 0.0, (3, 4), offset=0.25).item() == 1.0  # 3 / 3


@pytest.mark.parametrize('input_size,expected', [
    ((64, 64), (16, 16)),  # the whole square
    ((48, 64), (12, 16)),  # a landscape image: the bottom rows are padding
    ((64, 22), (16, 6)),  # 22 * 16 / 64 = 5.5: the partly covered column counts
    ((1, 64), (1, 16)),
])
def test_the_valid_low_res_window_covers_the_image(input_size, expected):
    assert low_res_valid_size((16, 16), 64, input_size) == expected


def test_pairwise_iou_of_hand_made_masks():
    a = torch.zeros(3, 4, 4, dtype=torch.bool)
    b = torch.zeros_like(a)
    a[0, :2] = True  # 8 pixels
    b[0, 1:3] = True  # 8 pixels, 4 shared: 4 / 12
    a[1, 0, 0] = b[1, 0, 0] = True  # equal: 1
    # 2: both empty: 0
    np.testing.assert_allclose(pairwise_iou(a, b).numpy(), [1 / 3, 1.0, 0.0], rtol=1e-6)


def test_class_table_of_a_hand_made_label_map():
    coarse = np.zeros((6, 8), np.int64)
    coarse[:, :4] = 1  # 24 pixels
    coarse[0, 7] = 2  # a speck: no instance
    refined = np.zeros_like(coarse)
    refined[:, :3] = 1  # 18 pixels, all inside: 18 / 24
    table = class_signals(coarse, refined, [1, 2], np.array([1, 1]),
                          scores=np.array([0.9, 0.6], np.float32),
                          stability=np.array([0.7, 0.8], np.float32))
    assert tuple(table) == CLASS_COLUMNS
    assert table['class'].tolist() == [1, 2] and table['instances'].tolist() == [2, 0]
    assert table['coarse_pixels'].tolist() == [24, 1]
    assert table['refined_pixels'].tolist() == [18, 0]
    np.testing.assert_allclose(table['coarse_iou'], [0.75, 0.0])
    np.testing.assert_allclose(table['score'], [0.6, 0.0])  # the lowest instance's
    np.testing.assert_allclose(table['stability'], [0.7, 0.0])


@pytest.fixture
def refiner(tiny_sam):
    return SAMRefiner(tiny_sam, iters=1)


def test_refine_returns_the_kept_candidates_stability_and_iou_with_the_coarse_mask(
        refiner, scene):
    image, masks = scene
    masks = np.concatenate([masks, np.zeros_like(masks[:1])])  # and an empty one
    embedding = refiner.encode_image(image)
    result = refiner.refine(None, masks, image_embedding=embedding)
    # the same round by hand: the kept candidate's low-res logits
    active = torch.from_numpy(masks[:2])
    prompts = refiner.mine(active, embedding)
    logits, ious = refiner.decode(prompts, embedding)
    best = ious.argmax(1)
    kept = logits[torch.arange(2), best]
    threshold = refiner.backend.mask_threshold
    rows, cols = low_res_valid_size(refiner.low_res_size, refiner.encoder_size,
                                    embedding.input_size)
    window = kept[:, :rows, :cols].flatten(1)
    by_hand = (window > threshold + 1).sum(1) / (window > threshold - 1).sum(1).clamp(min=1)
    np.testing.assert_allclose(result.stability[:2], by_hand.numpy(), rtol=1e-6)
    for k in range(2):
        inter = (result.masks[k] & masks[k]).sum()
        union = (result.masks[k] | masks[k]).sum()
        assert result.coarse_iou[k] == pytest.approx(inter / union, rel=1e-6)
    assert result.stability[2] == result.coarse_iou[2] == result.scores[2] == 0
    assert result.stability.dtype == result.coarse_iou.dtype == np.float32
    # tensors in, tensors out
    as_tensor = refiner.refine(None, torch.from_numpy(masks), image_embedding=embedding)
    np.testing.assert_array_equal(as_tensor.stability.numpy(), result.stability)
    np.testing.assert_array_equal(as_tensor.coarse_iou.numpy(), result.coarse_iou)


def test_refine_label_map_gives_refine_semantics_map_and_a_row_per_class(refiner, scene):
    image, masks = scene
    label_map = np.zeros(masks.shape[1:], np.uint8)
    label_map[masks[0]] = 3
    label_map[masks[1]] = 5
    label_map[0, 0] = 7  # a class of one pixel: no instance (under min_area)
    label_map[-2:, -2:] = 255  # ignore_index
    embedding = refiner.encode_image(image)
    result = refiner.refine_label_map(None, label_map, image_embedding=embedding)
    np.testing.assert_array_equal(
        result.label_map, refiner.refine_semantic(None, label_map, image_embedding=embedding))
    assert result.classes['class'].tolist() == [3, 5, 7]
    # one instance per class, then what the residual passes refined
    assert result.instance_classes[:2].tolist() == [3, 5]
    assert result.instances.masks.shape == (len(result.instance_classes), ) + label_map.shape
    for row, cls in enumerate([3, 5, 7]):
        mine = result.instance_classes == cls
        assert result.classes['instances'][row] == mine.sum()
        assert result.classes['refined_pixels'][row] == (result.label_map == cls).sum()
        if mine.any():
            assert result.classes['score'][row] == result.instances.scores[mine].min()
    assert result.classes['instances'][2] == 0
    assert result.classes['score'][2] == result.classes['stability'][2] == 0


def test_a_map_with_nothing_to_refine_gives_an_empty_table(refiner, scene):
    image, masks = scene
    background = np.zeros(masks.shape[1:], np.uint8)
    result = refiner.refine_label_map(image, background)
    np.testing.assert_array_equal(result.label_map, background)
    assert len(result.instances) == 0 and all(len(v) == 0 for v in result.classes.values())


def test_count_along_counts_as_a_bool_sum():
    from mmsamrefiner.refiner.bool_ops import count_along
    masks = torch.rand(5, 7, 300) > 0.3
    masks[0] = True  # 2100 > 255: the byte sum must not wrap
    masks[1] = False
    for dim in (1, 2, (1, 2)):
        counts = count_along(masks, dim)
        assert counts.dtype == torch.int32
        torch.testing.assert_close(counts, masks.sum(dim).int())
