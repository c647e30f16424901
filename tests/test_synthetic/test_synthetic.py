# Copyright (c) mmsamrefiner contributors. All rights reserved.
import cv2
import numpy as np
import pytest

from mmsamrefiner.synthetic import (
    make_class_scene,
    make_coarse_masks,
    make_crowded_scene,
    make_scene,
)
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


def test_crowded_scenes_hold_5_to_20_objects_of_mixed_sizes():
    areas = []
    for seed in range(6):
        scene = make_crowded_scene(seed, height=120, width=160)
        again = make_crowded_scene(seed, height=120, width=160)
        assert np.array_equal(scene.image, again.image)
        assert np.array_equal(scene.masks, again.masks)
        assert scene.image.shape == (120, 160, 3) and scene.image.dtype == np.uint8
        assert 1 <= len(scene.masks) <= 20 and len(scene.labels) == len(scene.masks)
        assert scene.masks.sum(0).max() == 1  # visible parts do not overlap
        areas += scene.masks.reshape(len(scene.masks), -1).sum(1).tolist()
    # log-uniform radii of 0.02-0.3 of the short side: a few pixels to a third of the image
    assert min(areas) < 60 and max(areas) > 1500


def test_coco_collection_of_crowded_scenes(tmp_path):
    import json
    from functools import partial

    from mmsamrefiner.synthetic.coco_collection import write_coco_collection
    make = partial(make_crowded_scene, height=60, width=80, num_objects=(5, 6))
    ann_file = write_coco_collection(str(tmp_path), 2, coarse=True, seed=3, make=make)
    coco = json.load(open(ann_file))
    assert [(im['height'], im['width']) for im in coco['images']] == [(60, 80)] * 2
    assert 2 <= len(coco['annotations']) <= 12
