# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Prompt mining on hand-made masks whose right answers are known."""
import numpy as np
import pytest
import torch

from mmsamrefiner.refiner.distance import farthest_background_in_box
from mmsamrefiner.refiner.prompts import PromptMiner, masks_to_boxes
from mmsamrefiner.refiner.resize import resized_shape
from mmsamrefiner.testing import distance_to_background
from tests.tiny_models import disk

H, W = 96, 120


def miner(**kwargs):
    return PromptMiner(encoder_size=128, low_res_size=(32, 32), **kwargs)


def ring(cx, cy, r_out, r_in, gap_half_height=0):
    """A ring (O); with ``gap_half_height`` a C opening to the right."""
    yy, xx = np.mgrid[:H, :W]
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    shape = (d2 <= r_out ** 2) & (d2 > r_in ** 2)
    if gap_half_height:
        shape &= ~((np.abs(yy - cy) <= gap_half_height) & (xx > cx))
    return shape


def brute_force_distance(mask, to_foreground):
    """Euclidean distance of each pixel to the nearest pixel of the other set."""
    target = np.argwhere(mask if to_foreground else ~mask)
    pixels = np.argwhere(np.ones_like(mask))
    d2 = ((pixels[:, None, :] - target[None]) ** 2).sum(-1).min(1)
    return np.sqrt(d2).reshape(mask.shape)


def test_boxes_are_tight_inclusive_xyxy():
    masks = np.zeros((3, H, W), bool)
    masks[0, 10:30, 5:45] = True  # rows 10..29, columns 5..44
    masks[1, 50, 60] = True  # one pixel
    boxes = masks_to_boxes(torch.from_numpy(masks))
    assert boxes.tolist() == [[5, 10, 44, 29], [60, 50, 60, 50], [0, 0, 0, 0]]


def test_positive_point_is_disk_centre():
    masks = torch.from_numpy(np.stack([disk(H, W, 35, 40, 18), disk(H, W, 90, 60, 9)]))
    prompts = miner()(masks)
    assert prompts.points[:, 0].tolist() == [[35, 40], [90, 60]]
    assert prompts.labels[:, 0].tolist() == [1, 1]


def test_negative_point_is_in_hollow_of_c_shape():
    c_shape = ring(60, 48, 30, 16, gap_half_height=4)
    prompts = miner()(torch.from_numpy(c_shape[None]))
    assert prompts.labels[0].tolist() == [1, 0]
    assert prompts.points[0, 1].tolist() == [60, 48]  # the hollow's centre
    assert not c_shape[48, 60]


def test_points_match_brute_force_distances():
    c_shape = ring(60, 48, 30, 16, gap_half_height=4)
    inside = brute_force_distance(c_shape, to_foreground=False) * c_shape
    x1, y1, x2, y2 = masks_to_boxes(torch.from_numpy(c_shape[None]))[0].tolist()
    outside = brute_force_distance(c_shape, to_foreground=True)
    in_box = np.zeros_like(c_shape)
    in_box[y1:y2 + 1, x1:x2 + 1] = True
    outside = outside * (in_box & ~c_shape)

    dist = distance_to_background(c_shape[None], np.array([[x1, y1, x2, y2]]))[0]
    np.testing.assert_allclose(dist, inside, atol=1e-4)
    neg, found = farthest_background_in_box(c_shape[None], np.array([[x1, y1, x2, y2]]))
    y, x = np.unravel_index(outside.argmax(), outside.shape)
    assert found[0] and neg[0].tolist() == [x, y]


def test_distance_ignores_image_border_as_background():
    mask = np.zeros((1, H, W), bool)
    mask[0, 0:20, 0:40] = True  # touches the top and left borders
    dist = distance_to_background(mask, np.array([[0, 0, 39, 19]]))[0]
    np.testing.assert_allclose(dist, brute_force_distance(mask[0], False) * mask[0],
                               atol=1e-4)
    assert dist[0, 0] == 20  # nearest background is below, not the border


def test_filled_box_has_no_negative_point():
    masks = np.zeros((2, H, W), bool)
    masks[0, 10:30, 5:45] = True
    masks[1] = disk(H, W, 60, 50, 12)
    prompts = miner()(torch.from_numpy(masks))
    assert prompts.labels.tolist() == [[1, -1], [1, 0]]
    assert prompts.boxes[0].tolist() == [5, 10, 44, 29]


def test_prompt_switches():
    masks = torch.from_numpy(disk(H, W, 35, 40, 18)[None])
    only_box = miner(use_point=False, use_mask=False)(masks)
    assert only_box.points is None and only_box.mask_inputs is None
    assert only_box.boxes.tolist() == [[17, 22, 53, 58]]
    no_neg = miner(add_neg=False, use_box=False)(masks)
    assert no_neg.points.shape == (1, 1, 2) and no_neg.boxes is None
    with pytest.raises(ValueError, match='at least one'):
        miner(use_point=False, use_box=False, use_mask=False)


def test_gaussian_mask_prompt_levels():
    masks = torch.from_numpy(np.stack([disk(H, W, 60, 48, 30)]))
    prompt = miner(strength=30.0)(masks).mask_inputs
    assert prompt.shape == (1, 1, 32, 32)
    in_h, in_w = resized_shape(H, W, 128)  # 102 x 128: rows past 102 are padding
    low_h = in_h * 32 // 128
    assert torch.all(prompt[0, 0, low_h + 1:] == -30)  # padding: background
    assert torch.all(prompt[0, 0, 0, :] == -30)  # image corner: background
    centre = prompt[0, 0, int(48 * 32 / 120), int(60 * 32 / 120)]
    assert 25 < centre <= 30  # near the positive point the Gaussian is ~1
    inside = prompt[prompt > 0]
    assert inside.max() <= 30 and inside.min() < 10  # decays toward the edge


def test_gaussian_span_grows_with_area_over_gamma():
    masks = torch.from_numpy(disk(H, W, 60, 48, 30)[None])
    narrow = miner(gamma=16.0)(masks).mask_inputs
    wide = miner(gamma=1.0)(masks).mask_inputs
    assert narrow[narrow > 0].mean() < wide[wide > 0].mean()


def elastic_case():
    """A 128x128 image whose left 64 columns have feature +e0, the rest -e0."""
    embedding = torch.zeros(2, 8, 8)
    embedding[0, :, :4] = 1.0
    embedding[0, :, 4:] = -1.0
    embedding[1] = 0.01
    masks = torch.zeros(1, 128, 128, dtype=torch.bool)
    masks[0, 30:100, 30:64] = True  # box (30, 30, 63, 99): w 33 -> 3 px, h 69 -> 6 px
    return masks, embedding


def test_elastic_box_grows_only_toward_similar_context():
    masks, embedding = elastic_case()
    prompts = miner(elastic_margin=0.5, box_geometry='symmetric')(masks, embedding)
    # left, top and bottom strips look like the object; the right one does not
    assert prompts.boxes.tolist() == [[27, 24, 63, 105]]
    assert prompts.expanded.tolist() == [True]
    # the default, the authors' geometry: left/top sides move by ceil(step)
    prompts = miner(elastic_margin=0.5)(masks, embedding)
    assert prompts.boxes.tolist() == [[26, 23, 63, 105]]
    assert prompts.expanded.tolist() == [True]
    # an expanded box's mask prompt has amplitude 1 instead of strength
    assert prompts.mask_inputs.abs().max() == 1


def test_elastic_box_off_by_default_and_needs_embedding():
    masks, embedding = elastic_case()
    prompts = miner()(masks, embedding)
    assert prompts.boxes.tolist() == [[30, 30, 63, 99]]
    assert prompts.expanded.tolist() == [False]
    assert prompts.mask_inputs.abs().max() == 30
    with pytest.raises(ValueError, match='embedding'):
        miner(elastic_margin=0.1)(masks)


def test_expanded_choice_is_per_mask():
    masks, embedding = elastic_case()
    small = torch.zeros_like(masks)
    small[0, 60:65, 100:105] = True  # 5x5: too small to grow
    prompts = miner(elastic_margin=0.5)(torch.cat([masks, small]), embedding)
    assert prompts.expanded.tolist() == [True, False]
    assert prompts.mask_inputs[0].abs().max() == 1
    assert prompts.mask_inputs[1].abs().max() == 30


def test_batch_prompts_equal_single_prompts():
    masks = torch.from_numpy(np.stack([
        disk(H, W, 35, 40, 18), ring(60, 48, 30, 16, 4), disk(H, W, 100, 80, 6)]))
    batch = miner()(masks)
    for i in range(len(masks)):
        single = miner()(masks[i:i + 1])
        assert torch.equal(batch.points[i], single.points[0])
        assert torch.equal(batch.labels[i], single.labels[0])
        assert torch.equal(batch.boxes[i], single.boxes[0])
        torch.testing.assert_close(batch.mask_inputs[i], single.mask_inputs[0])


def test_box_restricted_resize_matches_the_interpolate_chain():
    """The mask prompt's resizes, done as matrices on each mask's box and
    evaluated on the output window it reaches, equal F.interpolate -> pad ->
    F.interpolate on the whole image (zero off the windows)."""
    import torch.nn.functional as F

    from mmsamrefiner.refiner.prompts import box_crops, masks_to_boxes
    from mmsamrefiner.refiner.resize import prompt_resize_matrices, resize_box_crops_to_windows
    rng = np.random.default_rng(0)
    H, W, S, L = 75, 110, 64, (16, 16)
    maps = torch.zeros(3, H, W)
    maps[0, 10:30, 5:50] = torch.from_numpy(rng.random((20, 45))).float()
    maps[1, 60:75, 90:110] = 1.0  # touching the bottom-right corner
    maps[2, 0:1, 0:1] = 2.0       # a single pixel
    boxes = masks_to_boxes(maps > 0)
    in_h, in_w = resized_shape(H, W, S)
    expected = F.interpolate(maps[:, None], (in_h, in_w), mode='bilinear', align_corners=False)
    expected = F.pad(expected, (0, S - in_w, 0, S - in_h))
    expected = F.interpolate(expected, L, mode='bilinear', align_corners=False)[:, 0]
    rows, cols = prompt_resize_matrices((H, W), (in_h, in_w), S, L)
    crops = box_crops(maps, boxes)
    windows, oy, valid_y, ox, valid_x = resize_box_crops_to_windows(crops[:, None], boxes,
                                                                    rows, cols)
    assert windows.shape[-2] < L[0] and windows.shape[-1] < L[1]  # not the whole frame
    got = torch.zeros(3, *L)
    k, i, j = torch.nonzero(valid_y[:, :, None] & valid_x[:, None, :], as_tuple=True)
    got[k, oy[k, i], ox[k, j]] = windows[k, 0, i, j]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_distance_box_crops_equal_the_whole_image_transform():
    from mmsamrefiner.refiner.distance import distance_box_crops
    from mmsamrefiner.refiner.prompts import masks_to_boxes
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 40, 50), bool)
    masks[0, 5:20, 3:30] = rng.random((15, 27)) > 0.3
    masks[1, 30:40, 40:50] = True   # touches the image border
    boxes = masks_to_boxes(torch.from_numpy(masks)).numpy()
    full, peaks = distance_to_background(masks, boxes, return_peaks=True)
    crops, crop_peaks = distance_box_crops(masks, boxes)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if masks[i].any():
            np.testing.assert_array_equal(crops[i, :y2 - y1 + 1, :x2 - x1 + 1],
                                          full[i, y1:y2 + 1, x1:x2 + 1])
    np.testing.assert_array_equal(crop_peaks, peaks)
    assert crops[2].max() == 0 and tuple(crop_peaks[2]) == (0, 0)  # empty mask


def test_windowed_upscale_matches_sams_postprocess(tiny_sam):
    """Only the window positive cells reach is evaluated; the masks are SAM's."""
    from mmsamrefiner.refiner.upscale import upscale_bands, upscale_to_masks
    yy, xx = torch.meshgrid(torch.arange(32.), torch.arange(32.), indexing='ij')
    low = torch.stack([
        8 - ((yy - 10) ** 2 + (xx - 12) ** 2).sqrt(),      # a disc
        torch.full((32, 32), -3.0),                         # nothing positive
        torch.where((xx > 20) & (yy < 6), 4.0, -4.0),      # a block at the border
    ])
    input_size, original = (96, 128), (150, 200)
    expected = tiny_sam.postprocess_masks(low[:, None], input_size, original)[:, 0] > 0
    rows, cols = upscale_bands((32, 32), 128, input_size, original)
    got = upscale_to_masks(low, rows, cols)
    assert got.shape == (3, 150, 200) and not got[1].any()
    assert (got != expected).sum() <= 2  # float rounding at the threshold at most
    assert got[0].sum() > 1000 and got[2].sum() > 100


def test_size_groups_keep_padding_bounded_and_cover_every_box():
    from mmsamrefiner.refiner.prompts import size_groups
    # areas: 100, 10000, 110, 400, 9000 (xyxy inclusive)
    boxes = torch.tensor([[0, 0, 9, 9], [0, 0, 99, 99], [0, 0, 10, 9], [0, 0, 19, 19],
                          [0, 0, 89, 99]])
    groups = [g.tolist() for g in size_groups(boxes, min_crop=0)]
    assert groups == [[0, 2], [3], [4, 1]]  # 110 <= 2x100; 400 > 2x100; 10000 <= 2x9000
    assert sorted(i for g in groups for i in g) == list(range(5))
    # small crops stay together: padding 400 pixels is cheaper than a group
    assert [g.tolist() for g in size_groups(boxes, min_crop=500)] == [[0, 2, 3], [4, 1]]
    assert size_groups(boxes[:0]) == []


def test_upscale_of_logits_positive_only_in_the_padding_is_empty():
    """SAM may answer in the encoder square's padding, which the crop to the
    image drops: the mask is empty (the refiner then keeps the previous one)."""
    from mmsamrefiner.refiner.upscale import upscale_bands, upscale_to_masks
    low = torch.full((2, 32, 32), -5.0)
    low[0, 26:31, 3:9] = 5.0   # rows 26-30: padding below a 96-row input
    low[1, 2:6, 3:9] = 5.0     # inside the image
    rows, cols = upscale_bands((32, 32), 128, (96, 128), (150, 200))
    got = upscale_to_masks(low, rows, cols)
    assert not got[0].any() and got[1].any()


# -- the elastic box's two geometries ----------------------------------------
# A per-pixel embedding at the image's own size makes the similarity map
# exactly the painted pixels: upsampling to the same size is the identity, the
# query is the mean of the mask's (+1, 0.01) features, and (-1, 0.01) pixels
# have cosine about -1 with it.
def painted_case(size, rects, similar_pixels=()):
    """(1, S, S) mask of the union of ``rects`` ((y1, y2, x1, x2) inclusive)
    and a (2, S, S) embedding similar to it on the mask and ``similar_pixels``
    ((y, x) each), or everywhere when ``similar_pixels`` is ``'all'``."""
    masks = torch.zeros(1, size, size, dtype=torch.bool)
    for y1, y2, x1, x2 in rects:
        masks[0, y1:y2 + 1, x1:x2 + 1] = True
    similar = masks[0].clone()
    if similar_pixels == 'all':
        similar[:] = True
    for y, x in () if similar_pixels == 'all' else similar_pixels:
        similar[y, x] = True
    embedding = torch.full((2, size, size), 0.01)
    embedding[0] = torch.where(similar, 1.0, -1.0)
    return masks, embedding


def grown_box(masks, embedding, geometry, elastic_margin=0.1):
    prompts = miner(elastic_margin=elastic_margin, box_geometry=geometry)(masks, embedding)
    return prompts.boxes[0].long().tolist(), bool(prompts.expanded[0])


def test_authors_geometry_moves_left_top_by_ceil_and_right_bottom_by_floor():
    # box (10, 12, 35, 37): w = h = 25, s = 2.5; every pixel similar
    masks, embedding = painted_case(48, [(12, 37, 10, 35)], 'all')
    assert grown_box(masks, embedding, 'symmetric') == ([8, 10, 37, 39], True)
    # int(10 - 2.5) = 7, int(12 - 2.5) = 9, int(35 + 2.5) = 37, int(37 + 2.5) = 39
    assert grown_box(masks, embedding, 'authors') == ([7, 9, 37, 39], True)


def test_authors_geometry_never_grows_onto_row_or_column_0():
    # box (3, 2, 22, 31): w = 19 -> s = 1.9, h = 29 -> s = 2.9; all similar
    masks, embedding = painted_case(48, [(2, 31, 3, 22)], 'all')
    # symmetric: floor steps 1 and 2; the top side may reach row 0
    assert grown_box(masks, embedding, 'symmetric') == ([2, 0, 23, 33], True)
    # authors: left int(3 - 1.9) = 1 > 0 moves; top int(2 - 2.9) = 0 does not
    assert grown_box(masks, embedding, 'authors') == ([1, 2, 23, 33], True)
    # box (2, 20, 21, 39), s = 1.9: the authors' left side would land on
    # column 0 (int(2 - 1.9) = 0) and stays; their top moves by 2 (to 18)
    masks, embedding = painted_case(48, [(20, 39, 2, 21)], 'all')
    assert grown_box(masks, embedding, 'symmetric') == ([1, 19, 22, 40], True)
    assert grown_box(masks, embedding, 'authors') == ([2, 18, 22, 40], True)


def test_authors_right_and_bottom_strips_hold_the_boxs_own_last_column_and_row():
    # A filled 20x20 square (box (10, 10, 29, 29), s = 1.9) on a background
    # unlike it: the symmetric strips (column 30, row 30) hold nothing similar;
    # the authors' right strip is column 29 and bottom strip row 29, the
    # mask's own edge, so both sides grow by floor(1.9) = 1.  Their left and
    # top strips (columns / rows 8..9, new side int(10 - 1.9) = 8) are empty.
    masks, embedding = painted_case(40, [(10, 29, 10, 29)])
    assert grown_box(masks, embedding, 'symmetric') == ([10, 10, 29, 29], False)
    assert grown_box(masks, embedding, 'authors') == ([10, 10, 30, 30], True)
    # with the whole box touching the right and bottom image edges neither grows
    masks, embedding = painted_case(30, [(10, 29, 10, 29)])
    assert grown_box(masks, embedding, 'authors') == ([10, 10, 29, 29], False)


def test_authors_left_and_top_strips_leave_out_the_last_row_and_column():
    # box (10, 10, 20, 20): s = 1.0.  One similar pixel at (y 20, x 9): in the
    # symmetric left strip (column 9, rows 10..20; 1/11 > 0.05) but not in the
    # authors' (column 9, rows 10..19).  The authors' right/bottom strips are
    # the mask's own last column/row, so those sides grow.
    masks, embedding = painted_case(40, [(10, 20, 10, 20)], [(20, 9)])
    assert grown_box(masks, embedding, 'symmetric', elastic_margin=0.05) == ([9, 10, 20, 20], True)
    assert grown_box(masks, embedding, 'authors', elastic_margin=0.05) == ([10, 10, 21, 21], True)
    # likewise the top strip leaves out column x2: a similar pixel at (9, 20)
    masks, embedding = painted_case(40, [(10, 20, 10, 20)], [(9, 20)])
    assert grown_box(masks, embedding, 'symmetric', elastic_margin=0.05) == ([10, 9, 20, 20], True)
    assert grown_box(masks, embedding, 'authors', elastic_margin=0.05) == ([10, 10, 21, 21], True)


def test_authors_geometry_on_the_half_image_case():
    # elastic_case: box (30, 30, 63, 99), w 33 -> s 3.3, h 69 -> s 6.9; the
    # left 64 columns are similar.  Left int(26.7) = 26, top int(23.1) = 23,
    # bottom int(105.9) = 105 are similar strips; the right strip, columns
    # 63..65, holds the mask's last column: 1/3 < 0.5, so it stays.
    masks, embedding = elastic_case()
    assert grown_box(masks, embedding, 'authors', elastic_margin=0.5) == ([26, 23, 63, 105], True)
    assert grown_box(masks, embedding, 'authors', elastic_margin=0.3) == ([26, 23, 66, 105], True)
    assert grown_box(masks, embedding, 'symmetric', elastic_margin=0.3) == ([27, 24, 63, 105], True)


def test_box_geometry_is_checked_and_shown():
    with pytest.raises(ValueError, match='box_geometry'):
        miner(box_geometry='asymmetric')
    assert "box_geometry='authors'" in repr(miner())
    assert "box_geometry='symmetric'" in repr(miner(box_geometry='symmetric'))


def test_every_layer_defaults_to_the_authors_geometry():
    import inspect

    from mmsamrefiner import SAMRefiner
    from mmsamrefiner.refiner.prompts import PromptMiner, elastic_boxes
    defaults = {inspect.signature(elastic_boxes).parameters['geometry'].default,
                inspect.signature(PromptMiner).parameters['box_geometry'].default,
                inspect.signature(SAMRefiner).parameters['box_geometry'].default}
    assert defaults == {'authors'}
    masks, embedding = elastic_case()  # where the two geometries differ
    grown, _ = elastic_boxes(masks, masks_to_boxes(masks), embedding, 0.3)
    assert grown[0].tolist() == grown_box(masks, embedding, 'authors', 0.3)[0] \
        != grown_box(masks, embedding, 'symmetric', 0.3)[0]
