# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Split-then-merge on hand-made label maps."""
import numpy as np
import pytest

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.stm import (
    group_fragments,
    merge_instances,
    split_class_mask,
    split_then_merge,
)


def test_far_apart_blobs_are_separate_instances():
    mask = np.zeros((60, 100), bool)
    mask[5:20, 5:20] = True
    mask[40:55, 70:95] = True
    instances = split_class_mask(mask)
    assert instances.shape == (2, 60, 100)
    assert instances[0, 10, 10] and instances[1, 50, 80]
    assert not (instances[0] & instances[1]).any()
    np.testing.assert_array_equal(instances.any(0), mask)


def test_object_cut_by_a_thin_line_is_merged():
    mask = np.zeros((60, 100), bool)
    mask[10:50, 10:60] = True
    mask[:, 35] = False  # an occluder splits one object in two halves
    instances = split_class_mask(mask)
    assert len(instances) == 1
    np.testing.assert_array_equal(instances[0], mask)


def test_fragments_under_min_area_are_dropped():
    mask = np.zeros((60, 100), bool)
    mask[10:30, 10:30] = True
    mask[50:52, 90:92] = True  # 4 pixels
    assert len(split_class_mask(mask, min_area=5)) == 1
    assert len(split_class_mask(mask, min_area=4)) == 2


def test_group_rule_on_boxes_and_areas():
    # two filled 10x10 squares 2 px apart: boxes cover most of the joint box
    boxes = np.array([[0, 0, 9, 9], [12, 0, 21, 9], [100, 100, 109, 109]])
    areas = np.array([100, 100, 100])
    assert group_fragments(boxes, areas).tolist() == [0, 0, 2]
    # two squares far apart (their boxes cover 8% of the joint box) stay apart
    assert group_fragments(np.array([[0, 0, 9, 9], [40, 40, 49, 49]]),
                           np.array([100, 100])).tolist() == [0, 1]


def test_split_then_merge_keeps_class_order():
    label_map = np.zeros((40, 40), np.uint8)
    label_map[2:10, 2:10] = 3
    label_map[20:30, 20:30] = 1
    label_map[2:10, 30:38] = 3
    masks, classes = split_then_merge(label_map, [1, 3])
    assert classes.tolist() == [1, 3, 3]
    assert masks.shape == (3, 40, 40)


def test_merge_overlaps_by_score_and_keeps_ignored_and_other_classes():
    label_map = np.zeros((10, 10), np.uint8)
    label_map[0:4, 0:4] = 1
    label_map[6:10, 6:10] = 2  # a class that is not refined
    label_map[9, 0] = 255  # ignored
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 0:5, 0:5] = True  # class 1, score 0.9
    masks[1, 3:8, 3:8] = True  # class 4, score 0.5: loses the overlap
    masks[1, 9, 0] = True  # tries to claim an ignored pixel
    out = merge_instances(label_map, masks, np.array([1, 4]), np.array([0.9, 0.5]),
                          refined_classes=[1, 4])
    assert out.dtype == np.uint8
    assert out[4, 4] == 1  # overlap: higher score
    assert out[5, 5] == 4
    assert out[6, 6] == 2 and out[7, 7] == 2  # not refined: kept, not claimed
    assert out[9, 0] == 255  # ignored stays ignored
    assert out[9, 9] == 2 and out[0, 9] == 0


def test_unclaimed_pixels_of_refined_classes_become_background():
    label_map = np.zeros((10, 10), np.int32)
    label_map[0:6, 0:6] = 1
    masks = np.zeros((1, 10, 10), bool)
    masks[0, 0:3, 0:3] = True  # refinement shrank the object
    out = merge_instances(label_map, masks, np.array([1]), np.array([0.8]), [1])
    assert out[:3, :3].tolist() == [[1] * 3] * 3
    assert out.sum() == 9
    with pytest.raises(ValueError, match='background'):
        merge_instances(label_map, masks, np.array([0]), np.array([0.8]), [0])


def test_refine_semantic_end_to_end(tiny_sam, scene):
    image, masks = scene
    label_map = np.zeros(masks.shape[1:], np.uint8)
    label_map[masks[0]] = 7
    label_map[masks[1]] = 9
    label_map[0:3, 0:3] = 255
    refiner = SAMRefiner(tiny_sam, iters=1)
    out = refiner.refine_semantic(image, label_map)
    assert out.shape == label_map.shape and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 7, 9, 255}
    np.testing.assert_array_equal(out == 255, label_map == 255)
    # only the named classes are refined
    only_7 = refiner.refine_semantic(image, label_map, classes=[7])
    np.testing.assert_array_equal(only_7 == 9, label_map == 9)
    # a map with nothing to refine comes back unchanged
    blank = np.zeros_like(label_map)
    np.testing.assert_array_equal(refiner.refine_semantic(image, blank), blank)
    with pytest.raises(ValueError, match='label_map'):
        refiner.refine_semantic(image, label_map[None])
