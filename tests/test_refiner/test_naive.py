# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The batched, box-restricted miner and upscale against the direct
mask-by-mask, full-image implementation (the speed benchmark's baseline): two
independent implementations of the same algorithm must give the same prompts
and the same masks."""
import numpy as np
import pytest
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.resize import resized_shape
from mmsamrefiner.testing.naive import mine_mask_by_mask, upscale_all_then_select
from tests.tiny_models import disk


def hand_made_masks(height, width):
    """A C-shape (negative point in its hollow), a corner-touching block, a
    one-pixel-wide line, a ring and a few ellipses."""
    masks = []
    c = disk(height, width, width // 3, height // 2, min(height, width) // 4)
    c &= ~disk(height, width, width // 3 + 6, height // 2, min(height, width) // 7)
    c[height // 2 - 3:height // 2 + 3, width // 3:] = False
    masks.append(c)
    corner = np.zeros((height, width), bool)
    corner[:height // 5, :width // 4] = True
    masks.append(corner)
    line = np.zeros((height, width), bool)
    line[height - 7, width // 2:width - 1] = True
    masks.append(line)
    masks.append(disk(height, width, 2 * width // 3, height // 3, 14)
                 & ~disk(height, width, 2 * width // 3, height // 3, 8))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    for _ in range(4):
        ry, rx = rng.uniform(4, height / 4), rng.uniform(4, width / 4)
        cy, cx = rng.uniform(ry, height - ry), rng.uniform(rx, width - rx)
        masks.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
    return torch.from_numpy(np.stack(masks))


@pytest.mark.parametrize('size', [(96, 120), (150, 70)])
@pytest.mark.parametrize('elastic_margin,box_geometry',
                         [(0.0, 'symmetric'), (0.2, 'symmetric'), (0.2, 'authors')])
def test_batched_miner_equals_mask_by_mask_full_image_miner(tiny_sam, size, elastic_margin,
                                                            box_geometry):
    height, width = size
    refiner = SAMRefiner(tiny_sam, elastic_margin=elastic_margin, box_geometry=box_geometry)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    embedding = refiner.encode_image(image)
    masks = hand_made_masks(height, width)
    ours = refiner.mine(masks, embedding)
    theirs = mine_mask_by_mask(masks, refiner.miner, embedding.input_size, embedding.embedding,
                               refiner.backend.valid_grid(embedding.input_size))
    assert torch.equal(ours.points, theirs.points)
    assert torch.equal(ours.labels, theirs.labels)
    assert ours.labels[0].tolist() == [1, 0]  # the C-shape's hollow
    assert ours.labels[1].tolist() == [1, -1]  # a filled box has no negative point
    assert torch.equal(ours.boxes, theirs.boxes)
    assert torch.equal(ours.expanded, theirs.expanded)
    assert torch.equal(ours.mask_inputs.sign(), theirs.mask_inputs.sign())
    torch.testing.assert_close(ours.mask_inputs, theirs.mask_inputs, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize('geometry', ['symmetric', 'authors'])
def test_batched_elastic_boxes_equal_the_side_by_side_python(geometry):
    """Random boxes (many at the image's edges, flat, tiny and over 100 px)
    on random per-pixel embeddings: the batched, integer-step elastic box and
    naive.py's float arithmetic, strip by strip, agree everywhere."""
    from mmsamrefiner.refiner.prompts import context_similarity, elastic_boxes, masks_to_boxes
    from mmsamrefiner.testing.naive import elastic_box_one_mask
    rng = np.random.default_rng(4)
    height, width = 130, 150
    masks = np.zeros((60, height, width), bool)
    for mask in masks:
        y1, y2 = np.sort(rng.choice([0, 1, 2, *rng.integers(0, height, 3), height - 1], 2))
        x1, x2 = np.sort(rng.choice([0, 1, 2, *rng.integers(0, width, 3), width - 1], 2))
        mask[y1:y2 + 1, x1:x2 + 1] = rng.random((y2 - y1 + 1, x2 - x1 + 1)) < 0.7
        mask[y1, x1] = mask[y2, x2] = True
    masks = torch.from_numpy(masks)
    embedding = torch.from_numpy(rng.normal(size=(4, height, width))).float()
    embedding[0] += torch.from_numpy(rng.random((height, width)) < 0.5) * 2.0
    boxes = masks_to_boxes(masks)
    grown, expanded = elastic_boxes(masks, boxes, embedding, 0.3, (height, width), geometry)
    sim = context_similarity(masks, embedding, valid_grid=(height, width)).numpy()
    for i in range(len(masks)):
        box, grew = elastic_box_one_mask(sim[i], boxes[i].numpy(), 0.3, geometry)
        assert grown[i].tolist() == box.tolist() and bool(expanded[i]) == grew, i
    assert 10 < int(expanded.sum()) < 60


def test_mask_by_mask_miner_needs_masks_and_an_embedding_for_the_elastic_box(tiny_sam):
    refiner = SAMRefiner(tiny_sam, elastic_margin=0.2)
    masks = hand_made_masks(96, 120)
    with pytest.raises(ValueError, match='embedding'):
        mine_mask_by_mask(masks, refiner.miner, resized_shape(96, 120, 128))
    with pytest.raises(ValueError, match='at least one'):
        mine_mask_by_mask(masks[:0], SAMRefiner(tiny_sam).miner, resized_shape(96, 120, 128))


@pytest.mark.parametrize('through_encoder', [True, False])
@pytest.mark.parametrize('radii', [(0.5, 3), (2, 12)])  # narrow windows; whole rows
def test_upscale_of_the_kept_candidate_equals_upscaling_all_then_selecting(through_encoder,
                                                                            radii):
    from mmsamrefiner.refiner.upscale import upscale_bands, upscale_to_masks
    rng = np.random.default_rng(2)
    yy, xx = torch.meshgrid(torch.arange(32.), torch.arange(32.), indexing='ij')
    centres = torch.from_numpy(rng.uniform(0, 32, (6, 3, 2))).float()
    radii = torch.from_numpy(rng.uniform(*radii, (6, 3))).float()
    logits = radii[..., None, None] - ((yy - centres[..., 0, None, None]) ** 2 +
                                       (xx - centres[..., 1, None, None]) ** 2).sqrt()
    ious = torch.from_numpy(rng.random((6, 3))).float()
    original = (150, 200)
    encoder_size = 128 if through_encoder else None
    input_size = (96, 128) if through_encoder else (128, 128)
    expected = upscale_all_then_select(logits, ious, encoder_size, input_size, original, chunk=4)
    rows, cols = upscale_bands((32, 32), encoder_size, input_size, original)
    best = ious.argmax(1)
    got = upscale_to_masks(logits[torch.arange(6), best], rows, cols)
    assert expected.shape == got.shape == (6, ) + original
    assert expected.sum() > 100
    assert (got != expected).sum() <= 2  # float rounding at the threshold at most


def test_upscale_of_ragged_logits_falls_back_to_the_products_and_stays_exact(monkeypatch):
    """Noisy logits (random-weight SAMs answer like this) put most pixels on
    a boundary; the wide-window path then uses the matrix products."""
    from mmsamrefiner.refiner import upscale
    calls = []
    dense = upscale._threshold_dense
    monkeypatch.setattr(upscale, '_threshold_dense',
                        lambda *args: calls.append(1) or dense(*args))
    logits = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(3)) + 0.3
    original = (150, 200)
    expected = upscale_all_then_select(logits, torch.zeros(4, 1), 128, (96, 128), original)
    rows, cols = upscale.upscale_bands((32, 32), 128, (96, 128), original)
    got = upscale.upscale_to_masks(logits[:, 0], rows, cols)
    assert calls  # the fallback ran
    assert expected.float().mean() > 0.3
    assert (got != expected).sum() <= 2
