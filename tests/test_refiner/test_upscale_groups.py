# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Upscaling in groups of similar window size gives the masks of one batch
padded to the largest window, bit for bit, with few host syncs."""
import functools

import numpy as np
import pytest
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner import refiner as refiner_module
from mmsamrefiner.refiner.bool_ops import replace_masks_
from mmsamrefiner.refiner.resize import index_range
from mmsamrefiner.refiner.upscale import (
    axis_spans,
    similar_size_runs,
    upscale_bands,
    upscale_to_masks,
    window_groups,
)
from mmsamrefiner.testing.naive import upscale_all_then_select
from tests.host_syncs import count_host_syncs

from .test_naive import hand_made_masks

LOW_RES = 32  # the tiny SAMs' frames: encoder square 128, low-res logits 32
ENCODER = 128


def frames(original, through_encoder=True):
    """(encoder_size, input_size) of SAM (through the encoder square) or
    SAM 2 (straight to the image) for an ``original`` (H, W)."""
    if not through_encoder:
        return None, (ENCODER, ENCODER)
    scale = ENCODER / max(original)
    return ENCODER, (int(original[0] * scale + 0.5), int(original[1] * scale + 0.5))


def discs(centres, radii, size=LOW_RES):
    """(N, size, size) float32 logits ``radius - distance`` of discs at
    ``centres`` ((N, 2) yx, low-res cells)."""
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing='ij')
    centres = torch.as_tensor(centres, dtype=torch.float32)
    radii = torch.as_tensor(radii, dtype=torch.float32)
    return radii[:, None, None] - ((yy - centres[:, 0, None, None]) ** 2 +
                                   (xx - centres[:, 1, None, None]) ** 2).sqrt()


def hand_made_logits(extent=(LOW_RES, LOW_RES)):
    """One big disc, many small ones (some at the borders and corners of the
    input, which covers ``extent`` (rows, columns) of the low-res cells), a
    block in the top-left corner, empty logits, logits positive only in the
    encoder square's padding (at the bottom edge where there is none), a
    one-cell mask and a big one touching the right edge."""
    bottom, right = extent[0] - 1, extent[1] - 1
    centres = [(12, 14), (3, 3), (5, 20), (9, 9), (bottom, right), (0, 16), (bottom, 0),
               (20, right), (2, right), (17, 17), (6, 12), (bottom, 12), (16, 20), (10, 2),
               (12, right)]
    radii = [11, 1.5, 2, 2.5, 1.2, 2, 3, 2, 1.7, 1.1, 3.5, 2.2, 3, 1.5, 9]
    logits = discs(centres, radii)
    block = torch.full((1, LOW_RES, LOW_RES), -4.0)
    block[0, :4, :5] = 4.0
    empty = torch.full((1, LOW_RES, LOW_RES), -3.0)
    padding = torch.full((1, LOW_RES, LOW_RES), -5.0)
    if bottom + 2 < LOW_RES:  # below the input
        padding[0, bottom + 2:, 3:9] = 5.0
    if right + 2 < LOW_RES:  # right of the input
        padding[0, 3:9, right + 2:] = 5.0
    if bottom + 2 >= LOW_RES and right + 2 >= LOW_RES:  # no padding: the bottom edge
        padding[0, bottom - 2:, 3:9] = 5.0
    cell = torch.full((1, LOW_RES, LOW_RES), -2.0)
    cell[0, 8, 21] = 0.75
    return torch.cat([logits, block, empty, padding, cell])


def input_extent(original, through_encoder=True):
    """The low-res cells (rows, columns) that the resized image covers."""
    _, input_size = frames(original, through_encoder)
    return tuple(-(-size * LOW_RES // ENCODER) for size in input_size)


def random_logits(count, seed, size=LOW_RES):
    """``count`` SAM-like logits: discs and ellipses of mixed sizes (a few
    large), a little noise, some with no positive cell."""
    rng = np.random.default_rng(seed)
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing='ij')
    out = []
    for _ in range(count):
        radius = rng.uniform(6, 16) if rng.random() < 0.15 else rng.uniform(0.3, 4)
        cy, cx = rng.uniform(-2, size + 2, 2)
        stretch = rng.uniform(0.5, 2)
        distance = (((yy - cy) * stretch) ** 2 + (xx - cx) ** 2).sqrt()
        noise = torch.from_numpy(rng.normal(0, rng.uniform(0.05, 0.5), (size, size))).float()
        out.append(rng.uniform(1, 8) * (radius - distance) / radius + noise)
    return torch.stack(out)


def upscale_both(logits, original, through_encoder=True, threshold=0.0):
    encoder_size, input_size = frames(original, through_encoder)
    rows, cols = upscale_bands((LOW_RES, LOW_RES), encoder_size, input_size, original)
    grouped = upscale_to_masks(logits, rows, cols, threshold)
    one_batch = upscale_to_masks(logits, rows, cols, threshold, group_windows=False)
    return grouped, one_batch, rows, cols


def dense_reference(logits, original, through_encoder=True, threshold=0.0):
    """SAM's ``postprocess_masks`` with ``F.interpolate`` on the whole image."""
    encoder_size, input_size = frames(original, through_encoder)
    return upscale_all_then_select(logits[:, None], torch.zeros(len(logits), 1), encoder_size,
                                   input_size, original, threshold)


def groups_of(logits, rows, cols, group_windows=True, threshold=0.0):
    positive = (logits > threshold).view(torch.uint8)
    return window_groups(axis_spans(rows, positive.amax(2)), axis_spans(cols, positive.amax(1)),
                         group_windows)


@pytest.mark.parametrize('original', [(150, 200), (200, 150), (97, 301), (120, 120)])
@pytest.mark.parametrize('through_encoder', [True, False])
def test_hand_made_logits_grouped_equal_one_batch_and_the_dense_path(original,
                                                                     through_encoder):
    extent = input_extent(original, through_encoder)
    logits = hand_made_logits(extent)
    grouped, one_batch, rows, cols = upscale_both(logits, original, through_encoder)
    assert torch.equal(grouped, one_batch)
    assert torch.equal(grouped, dense_reference(logits, original, through_encoder))
    groups = groups_of(logits, rows, cols)
    assert len(groups) > 1  # the case is grouped, in narrow and wide groups
    assert min(g.width for g in groups) * 2 < original[1] <= max(g.width for g in groups) * 2
    assert not grouped[16].any()  # empty logits
    if extent != (LOW_RES, LOW_RES):
        assert not grouped[17].any()  # positive only in the padding
    assert grouped[0].sum() > 0.2 * grouped[0].numel()
    # the borders are reached: first and last rows and columns
    assert grouped[:, 0].any() and grouped[:, -1].any()
    assert grouped[:, :, 0].any() and grouped[:, :, -1].any()


@pytest.mark.parametrize('seed', range(6))
def test_random_batches_grouped_equal_one_batch(seed):
    original = [(150, 200), (96, 120), (200, 130)][seed % 3]
    logits = random_logits(40, seed)
    through_encoder = seed % 2 == 0
    threshold = [0.0, 0.0, -0.5][seed % 3]
    grouped, one_batch, rows, cols = upscale_both(logits, original, through_encoder, threshold)
    assert torch.equal(grouped, one_batch)
    reference = dense_reference(logits, original, through_encoder, threshold)
    assert (grouped != reference).sum() <= 2  # float rounding at the threshold at most
    assert len(groups_of(logits, rows, cols, threshold=threshold)) > 1


def test_ragged_logits_in_groups_fall_back_to_the_products_and_stay_equal(monkeypatch):
    """Noise puts most pixels on a boundary: wide groups use the products."""
    generator = torch.Generator().manual_seed(5)
    ragged = torch.randn(3, LOW_RES, LOW_RES, generator=generator) + 0.3
    logits = torch.cat([ragged, hand_made_logits(input_extent((150, 200)))])
    from mmsamrefiner.refiner import upscale
    answers = []
    by_taps = upscale._threshold_by_taps
    monkeypatch.setattr(upscale, '_threshold_by_taps',
                        lambda *args: answers.append(by_taps(*args)) or answers[-1])
    grouped, one_batch, _, _ = upscale_both(logits, (150, 200))
    assert any(answer is None for answer in answers)  # the products were taken
    assert torch.equal(grouped, one_batch)
    assert (grouped != dense_reference(logits, (150, 200))).sum() <= 2
    assert grouped[:3].float().mean() > 0.3


def test_no_masks_and_no_positive_logits():
    rows, cols = upscale_bands((LOW_RES, LOW_RES), ENCODER, (96, 128), (150, 200))
    assert upscale_to_masks(torch.zeros(0, LOW_RES, LOW_RES), rows, cols).shape == (0, 150, 200)
    negative = torch.full((3, LOW_RES, LOW_RES), -1.0)
    for group_windows in (True, False):
        with count_host_syncs() as syncs:
            masks = upscale_to_masks(negative, rows, cols, group_windows=group_windows)
        assert masks.shape == (3, 150, 200) and not masks.any()
        assert syncs.total == 1


def test_host_syncs_one_plus_at_most_two_per_wide_group():
    logits = hand_made_logits(input_extent((150, 200)))
    rows, cols = upscale_bands((LOW_RES, LOW_RES), ENCODER, (96, 128), (150, 200))
    for group_windows in (True, False):
        groups = groups_of(logits, rows, cols, group_windows)
        wide = sum(2 * g.width >= 200 for g in groups)
        with count_host_syncs() as syncs:
            upscale_to_masks(logits, rows, cols, group_windows=group_windows)
        # the windows' sizes; per wide group the boundary's size, and its
        # indices unless the products are taken (ragged) or it is empty
        assert wide >= 1 and 1 + wide <= syncs.total <= 1 + 2 * wide, syncs.counts
    with count_host_syncs() as syncs:  # narrow windows only
        upscale_to_masks(logits[1:14], rows, cols)
    assert syncs.total == 1


def test_masks_go_to_their_places_in_a_shared_buffer():
    logits = hand_made_logits(input_extent((150, 200)))
    rows, cols = upscale_bands((LOW_RES, LOW_RES), ENCODER, (96, 128), (150, 200))
    expected = upscale_to_masks(logits, rows, cols)
    flat = torch.zeros((len(logits) * 150 + 1) * 200, dtype=torch.bool)
    for start in range(0, len(logits), 7):
        upscale_to_masks(logits[start:start + 7], rows, cols, out=flat, start=start)
    assert torch.equal(flat[:-200].view(-1, 150, 200), expected)
    with pytest.raises(ValueError, match='flat buffer'):  # no scratch row
        upscale_to_masks(logits, rows, cols, out=torch.zeros(len(logits) * 150 * 200 + 1,
                                                             dtype=torch.bool))


def test_window_groups_cover_the_non_empty_windows_once():
    logits = hand_made_logits(input_extent((150, 200)))
    rows, cols = upscale_bands((LOW_RES, LOW_RES), ENCODER, (96, 128), (150, 200))
    live = [i for i in range(len(logits)) if i not in (16, 17)]  # empty, padding only
    groups = groups_of(logits, rows, cols)
    assert sorted(i for g in groups for i in g.index.tolist()) == live
    one = groups_of(logits, rows, cols, group_windows=False)
    assert len(one) == 1 and one[0].index.tolist() == live  # in their order
    assert (one[0].height, one[0].width) == (max(g.height for g in groups),
                                             max(g.width for g in groups))


def test_similar_size_runs_bound_the_padding():
    # areas sorted: 100, 110, 400, 9000, 10000
    heights, widths = [10, 10, 20, 90, 100], [10, 11, 20, 100, 100]
    assert similar_size_runs(heights, widths, min_window=0) == [(0, 2), (2, 3), (3, 5)]
    assert similar_size_runs(heights, widths, min_window=500) == [(0, 3), (3, 5)]
    assert similar_size_runs([], []) == []


def test_index_range_of_a_given_size_needs_no_sync():
    lo, hi = torch.tensor([3, 0, 5]), torch.tensor([6, 1, 4])
    expected = index_range(lo, hi, 7)
    with count_host_syncs() as syncs:
        got = index_range(lo, hi, 7, size=4)
    assert syncs.total == 0
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    wider, valid = index_range(lo, hi, 7, size=6)
    assert torch.equal(wider[:, :4], expected[0]) and not valid[:, 4:].any()


@pytest.mark.parametrize('by_where', [None, True, False])
def test_replace_masks_copies_the_chosen_masks(by_where):
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(5, 6, 7, generator=generator) > 0.5
    replacement = torch.rand(5, 6, 7, generator=generator) > 0.5
    which = torch.tensor([True, False, False, True, False])
    expected = masks.clone()
    expected[which] = replacement[which]
    got = masks.clone()
    assert replace_masks_(got, replacement, which, by_where) is got
    assert torch.equal(got, expected)
    if by_where:
        with count_host_syncs() as syncs:
            replace_masks_(masks.clone(), replacement, which, by_where)
        assert syncs.total == 0


def mixed_scene(height=96, width=120):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    masks = hand_made_masks(height, width).numpy()
    big = np.zeros((height, width), bool)
    big[5:90, 10:115] = True
    return image, np.concatenate([masks, big[None]])


def test_refine_equal_with_and_without_groups(tiny_sam):
    image, masks = mixed_scene()
    grouped = SAMRefiner(tiny_sam, iters=3)
    one_batch = SAMRefiner(tiny_sam, iters=3)
    one_batch.group_windows = False
    assert grouped.result_settings() == one_batch.result_settings()
    first, second = grouped.refine(image, masks), one_batch.refine(image, masks)
    np.testing.assert_array_equal(first.masks, second.masks)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.masks.any((1, 2)).all()


def test_refine_keeps_the_previous_mask_where_sam_answers_nothing(tiny_sam, monkeypatch):
    image, masks = mixed_scene()
    refiner = SAMRefiner(tiny_sam, iters=2)
    one_round = SAMRefiner(tiny_sam, iters=1).refine(image, masks)
    refine_once = refiner.refine_once
    rounds = []

    def second_round_answers_nothing_for_mask_2(current, embedding):
        new, scores, stability, prompts = refine_once(current, embedding)
        if rounds:
            new[2] = False
        rounds.append(1)
        return new, scores, stability, prompts

    monkeypatch.setattr(refiner, 'refine_once', second_round_answers_nothing_for_mask_2)
    results = []
    for by_where in (False, True):  # the CPU's way and the GPU's way
        monkeypatch.setattr(refiner_module, 'replace_masks_',
                            functools.partial(replace_masks_, by_where=by_where))
        rounds.clear()
        results.append(refiner.refine(image, masks))
    for result in results:
        np.testing.assert_array_equal(result.masks[2], one_round.masks[2])
        assert result.scores[2] == one_round.scores[2]
        assert result.stability[2] == one_round.stability[2]  # the kept round's, too
    np.testing.assert_array_equal(results[0].masks, results[1].masks)
    np.testing.assert_array_equal(results[0].scores, results[1].scores)


def test_refine_with_the_toy_sam_equal_with_and_without_groups(monkeypatch):
    """The trained toy SAM answers object-sized masks: a mask the size of
    the image, objects and a speck are upscaled in several groups."""
    from mmsamrefiner.refiner import upscale
    from mmsamrefiner.registry import build_in_scope
    from mmsamrefiner.synthetic import make_scene
    sam = build_in_scope(dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth'))
    scene = make_scene(seed=7, height=192, width=256, num_objects=4)
    big = np.zeros(scene.masks.shape[1:], bool)
    big[10:180, 20:245] = True
    speck = np.zeros_like(big)
    speck[100:106, 150:158] = True
    coarse = np.concatenate([scene.masks, scene.masks.any(0)[None], big[None], speck[None]])
    group_counts = []
    window_groups_ = upscale.window_groups
    monkeypatch.setattr(upscale, 'window_groups',
                        lambda *args: group_counts.append(len(window_groups_(*args)))
                        or window_groups_(*args))
    results = []
    for group_windows in (True, False):
        refiner = SAMRefiner(sam, iters=1)
        refiner.group_windows = group_windows
        results.append(refiner.refine(scene.image, coarse))
    assert group_counts[0] > 1 and group_counts[1] == 1
    np.testing.assert_array_equal(results[0].masks, results[1].masks)
    np.testing.assert_array_equal(results[0].scores, results[1].scores)
