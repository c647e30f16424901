# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""project_masks moves a mask where mmdet's transforms move the image content
under it, with the homography they record."""
import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import RandomCrop, RandomFlip, Resize

from mmsamrefiner.models.mask_projection import project_masks

RED, GREEN = (0, 0, 255), (0, 255, 0)  # BGR


def scene():
    """A 40x60 BGR image with a red L-shape and a green bar, and their masks."""
    image = np.zeros((40, 60, 3), np.uint8)
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 5:30, 4:10] = True
    masks[0, 24:30, 4:25] = True  # the L's foot
    masks[1, 10:14, 35:57] = True
    image[masks[0]] = RED
    image[masks[1]] = GREEN
    return image, masks


def where(image, colour):
    return torch.from_numpy((image == np.array(colour, np.uint8)).all(-1))


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_a_mask_lands_where_resize_flip_and_crop_moved_its_content(direction):
    image, masks = scene()
    np.random.seed(3)
    results = dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2])
    for transform in (Resize(scale=(120, 80), keep_ratio=False, interpolation='nearest'),
                      RandomFlip(prob=1.0, direction=direction),
                      RandomCrop(crop_size=(90, 70), allow_negative_crop=True)):  # (w, h)
        results = transform(results)
    view = results['img']
    assert view.shape[:2] == (70, 90) and results['img_shape'] == (70, 90)
    projected = project_masks(torch.from_numpy(masks), results['homography_matrix'], (70, 90))
    assert projected.dtype == torch.bool and projected.shape == (2, 70, 90)
    assert torch.equal(projected[0], where(view, RED))
    assert torch.equal(projected[1], where(view, GREEN))
    assert projected[0].any()  # the crop kept some of the L


def test_there_and_back_again_through_the_inverse():
    _, masks = scene()
    masks = torch.from_numpy(masks)
    flip_and_double = np.array([[-2, 0, 120], [0, 2, 0], [0, 0, 1]], np.float32)
    there = project_masks(masks, flip_and_double, (80, 120))
    assert int(there.sum()) == 4 * int(masks.sum())
    back = project_masks(there, np.linalg.inv(flip_and_double), (40, 60))
    assert torch.equal(back, masks)


def test_content_outside_the_source_is_background_and_no_masks_is_fine():
    masks = torch.ones((1, 4, 4), dtype=torch.bool)
    shift = torch.tensor([[1., 0, 2], [0, 1, 0], [0, 0, 1]])  # 2 pixels right
    moved = project_masks(masks, shift, (4, 8))
    assert moved[0].sum() == 16 and moved[0, :, 2:6].all() and not moved[0, :, :2].any()
    assert project_masks(masks[:0], shift, (4, 8)).shape == (0, 4, 8)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        project_masks(torch.ones(4, 4, dtype=torch.bool), np.eye(3), (4, 4))
    with pytest.raises(ValueError, match='3x3'):
        project_masks(torch.ones(1, 4, 4, dtype=torch.bool), np.eye(2), (4, 4))
