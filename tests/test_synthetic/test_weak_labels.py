# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The coarse pseudo-label makers of the pseudo-label benchmark, on hand-made
masks."""
import numpy as np
import pytest

from mmsamrefiner.synthetic.weak_labels import (
    cam_mask,
    make_weak_label_map,
    make_weak_masks,
    paint_label_map,
)


def l_shape():
    mask = np.zeros((40, 50), bool)
    mask[5:35, 10:18] = True   # the upright bar: rows 5..34, columns 10..17
    mask[27:35, 10:40] = True  # the foot: columns up to 39
    return mask


def disk(height=64, width=64, cx=32, cy=32, r=14):
    yy, xx = np.mgrid[:height, :width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2


def test_box_kind_of_an_l_shape_is_exactly_its_bounding_box_filled():
    box = make_weak_masks(l_shape()[None], 'box')[0]
    expected = np.zeros((40, 50), bool)
    expected[5:35, 10:40] = True
    np.testing.assert_array_equal(box, expected)


def test_box_kind_keeps_an_empty_mask_empty_and_the_stack_shape():
    masks = np.stack([l_shape(), np.zeros((40, 50), bool)])
    boxes = make_weak_masks(masks, 'box')
    assert boxes.shape == (2, 40, 50) and boxes.dtype == bool
    assert not boxes[1].any()


def test_cam_kind_dilates_erodes_or_deforms_each_mask_by_the_amount():
    mask = disk()
    seen = set()
    for seed in range(30):
        out = cam_mask(mask, np.random.default_rng(seed), amount=4)
        if (out >= mask).all():
            seen.add('dilated')
            assert out.sum() > mask.sum()
            assert not out[32, 32 + 14 + 6]  # at most 4 px out
        elif (out <= mask).all():
            seen.add('eroded')
            assert out.sum() < mask.sum()
            assert out[32, 32 + 14 - 5]  # at most 4 px in
        else:
            seen.add('blobby')  # the boundary moved out in places and in in others
            assert (out & ~mask).any() and (mask & ~out).any()
            assert out[32, 32 + 14 - 5] and not out[32, 32 + 14 + 6]
    assert seen == {'dilated', 'eroded', 'blobby'}


def test_weak_masks_are_seeded():
    masks = np.stack([disk(), disk(cx=20, cy=20, r=8)])
    np.testing.assert_array_equal(make_weak_masks(masks, 'cam', seed=3),
                                  make_weak_masks(masks, 'cam', seed=3))


def test_paint_label_map_paints_later_masks_over_earlier_ones():
    first = np.zeros((4, 5), bool)
    first[0:3, 0:3] = True
    second = np.zeros((4, 5), bool)
    second[2:4, 2:5] = True
    label_map = paint_label_map(np.stack([first, second]), np.array([3, 5]))
    np.testing.assert_array_equal(label_map, [[3, 3, 3, 0, 0],
                                              [3, 3, 3, 0, 0],
                                              [3, 3, 5, 5, 5],
                                              [0, 0, 5, 5, 5]])
    assert label_map.dtype == np.uint8


def test_weak_label_map_paints_the_weak_masks():
    masks = np.stack([l_shape()])
    np.testing.assert_array_equal(make_weak_label_map(masks, np.array([2]), kind='box'),
                                  2 * make_weak_masks(masks, 'box')[0])


def test_bad_input_is_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="'scribble'.*'box', 'cam'"):
        make_weak_masks(l_shape()[None], 'scribble')
    with pytest.raises(ValueError, match=r'\(N, H, W\).*\(40, 50\)'):
        make_weak_masks(l_shape(), 'box')
    with pytest.raises(ValueError, match='2 labels'):
        paint_label_map(l_shape()[None], np.array([1, 2]))
