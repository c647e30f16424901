# Copyright (c) mmsamrefiner contributors. All rights reserved.
import cv2
import numpy as np
import pytest

from mmsamrefiner.synthetic import make_class_scene, make_coarse_masks, make_scene
from mmsamrefiner.synthetic.defects import make_coarse_mask


def test_scenes_are_seeded_and_objects_do_not_overlap():
    a, b = make_scene(seed=3), make_scene(seed=3)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.image, make_scene(seed=4).image)
    assert a.image.dtype == np.uint8 and a.image.shape == (192, 240, 3)
    assert (a.masks.sum(0) <= 1).all() and a.masks.any((1, 2)).all()
    assert len(a.labels) == len(a.masks)


def test_defects_do_what_they_say():
    mask = np.zeros((64, 64), bool)
    mask[20:40, 10:50] = True
    mask[25:35, 30:35] = False
    assert (make_coarse_mask(mask, 'dilate') >= mask).all()
    assert make_coarse_mask(mask, 'dilate').sum() > mask.sum()
    assert (make_coarse_mask(mask, 'erode') <= mask).all()
    box = make_coarse_mask(mask, 'box')
    assert box.sum() == 20 * 40 and box[30, 32]
    with pytest.raises(ValueError, match='unknown defect'):
        make_coarse_mask(mask, 'smudge')
    assert make_coarse_masks(mask[None], seed=0).shape == (1, 64, 64)


def components(mask):
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


@pytest.mark.parametrize('count', [1, 2, 4])
def test_class_scenes_place_objects_apart_touching_or_occluded(count):
    for seed in range(3):
        apart = make_class_scene(seed, 144, 192, count, 'apart')
        assert len(apart.masks) == count and (apart.masks.sum(0) <= 1).all()
        grown = [cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) for m in apart.masks]
        assert (np.sum(grown, 0) <= 1).all()  # more than 4 pixels between objects
        touching = make_class_scene(seed, 144, 192, count, 'touching')
        assert len(touching.masks) == count and components(touching.masks.any(0)) == 1
        occluded = make_class_scene(seed, 144, 192, count, 'occluded')
        assert components(occluded.masks.any(0)) > count  # the bars cut the objects
    again = make_class_scene(5, 144, 192, count, 'touching')
    np.testing.assert_array_equal(again.image, make_class_scene(5, 144, 192, count,
                                                                'touching').image)
    with pytest.raises(ValueError, match="layout must be one of .*, got 'stacked'"):
        make_class_scene(0, 144, 192, count, 'stacked')
