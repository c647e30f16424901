# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The torch distance transforms against OpenCV's: the same float32 distances
bit for bit and the same first maxima, ties included; and the miner's prompts
and the refiner's masks the same whichever runs."""
import numpy as np
import pytest
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.distance import (
    distance_box_crops,
    distance_box_crops_torch,
    farthest_background_in_box,
    farthest_background_in_box_torch,
    squared_distance_to_features,
)
from mmsamrefiner.refiner.prompts import (
    OpenCVDistances,
    PromptMiner,
    TorchDistances,
    masks_to_boxes,
    size_groups,
    size_groups_and_crops,
)
from mmsamrefiner.testing.syncs import count_host_syncs
from tests.tiny_models import disk

H, W = 40, 50


def assert_same_transforms(masks: np.ndarray, **crop_options):
    """Both transforms of (N, H, W) bool masks agree with OpenCV's exactly."""
    tensor = torch.from_numpy(masks)
    boxes = masks_to_boxes(tensor)
    crops, peaks = distance_box_crops(masks, boxes.numpy())
    ours, our_peaks = distance_box_crops_torch(tensor, boxes, **crop_options)
    assert ours.dtype == torch.float32 and ours.shape == crops.shape
    np.testing.assert_array_equal(ours.numpy(), crops)  # bit for bit, inf included
    np.testing.assert_array_equal(our_peaks.numpy(), peaks)
    points, found = farthest_background_in_box(masks, boxes.numpy())
    our_points, our_found = farthest_background_in_box_torch(tensor, boxes, **crop_options)
    np.testing.assert_array_equal(our_points.numpy(), points)
    np.testing.assert_array_equal(our_found.numpy(), found)


def hand_made_masks():
    """A pixel, a rectangle, a ring, a C-shape, masks on every border and
    corner, the whole image, a checkerboard and a diagonal (ties), lines, an
    empty mask."""
    yy, xx = np.mgrid[:H, :W]
    masks = np.zeros((17, H, W), bool)
    masks[0, 20, 25] = True
    masks[1, 5:15, 10:40] = True
    d2 = (yy - 20) ** 2 + (xx - 25) ** 2
    masks[2] = (d2 <= 15 ** 2) & (d2 > 7 ** 2)
    masks[3] = masks[2] & ~((np.abs(yy - 20) <= 3) & (xx > 25))
    masks[4, :10, 5:20] = True  # top border
    masks[5, 30:, 5:20] = True  # bottom border
    masks[6, 5:20, :8] = True  # left border
    masks[7, 5:20, 42:] = True  # right border
    masks[8, :12, :12] = True  # top-left corner
    masks[9, 25:, 30:] = True  # bottom-right corner
    masks[10] = True  # the whole image: no background anywhere
    masks[11, 4:36, 6:44] = (yy[4:36, 6:44] + xx[4:36, 6:44]) % 2 == 0  # checkerboard
    masks[12] = np.abs(yy - xx) <= 2  # a band on the diagonal, through two corners
    masks[13, 33, 3:47] = True  # one row
    masks[14, 2:38, 24] = True  # one column
    masks[15, 10:30, 10:40] = True
    masks[15, 15:25, 18:32] = False  # a hollow rectangle: symmetric ties
    return masks  # masks[16] stays empty


def test_hand_made_masks_give_opencvs_distances_and_peaks():
    assert_same_transforms(hand_made_masks())


def test_a_mask_that_fills_a_large_image_gets_opencvs_value():
    """OpenCV's value for an image without background changes with its size
    and thread count (1.8e19 from one of its implementations, 65536 from the
    other); both are kept."""
    import cv2
    masks = np.ones((2, 200, 210), bool)
    masks[1, 50:60, 70:90] = False
    threads = cv2.getNumThreads()
    try:
        for count in (1, 2):
            cv2.setNumThreads(count)
            assert_same_transforms(masks)
    finally:
        cv2.setNumThreads(threads)


def test_each_hand_made_mask_alone_gives_the_same_as_in_the_batch():
    masks = hand_made_masks()
    batch, batch_peaks = distance_box_crops_torch(torch.from_numpy(masks),
                                                  masks_to_boxes(torch.from_numpy(masks)))
    for i in range(len(masks)):
        one = torch.from_numpy(masks[i:i + 1])
        crop, peak = distance_box_crops_torch(one, masks_to_boxes(one))
        h, w = crop.shape[1:]
        assert torch.equal(batch[i, :h, :w], crop[0]) and not batch[i, h:].any()
        assert torch.equal(batch_peaks[i], peak[0])


def random_masks(rng, count, height, width):
    """Blobs of random density in random boxes, many on the image's edges."""
    masks = np.zeros((count, height, width), bool)
    for mask in masks:
        y1, y2 = np.sort(rng.choice([0, *rng.integers(0, height, 3), height - 1], 2))
        x1, x2 = np.sort(rng.choice([0, *rng.integers(0, width, 3), width - 1], 2))
        area = mask[y1:y2 + 1, x1:x2 + 1]
        if rng.random() < 0.5:  # an ellipse, with random holes
            yy, xx = np.mgrid[:y2 - y1 + 1, :x2 - x1 + 1]
            ry, rx = (y2 - y1) / 2 + 0.5, (x2 - x1) / 2 + 0.5
            area[:] = ((yy - ry + 0.5) / ry) ** 2 + ((xx - rx + 0.5) / rx) ** 2 <= 1
            area &= rng.random(area.shape) < rng.uniform(0.9, 1)
        else:
            area[:] = rng.random(area.shape) < rng.uniform(0.2, 1)
    return masks


def test_random_masks_give_opencvs_distances_and_peaks():
    """240 seeded masks on 40 images of 1x1 to 70x70 pixels."""
    rng = np.random.default_rng(0)
    for _ in range(40):
        height, width = rng.integers(1, 71, 2)
        assert_same_transforms(random_masks(rng, 6, height, width))


def test_large_masks_give_opencvs_distances():
    """Masks up to 300x220 pixels (the per-row minimum in several blocks),
    with the crop size given or read from the boxes."""
    rng = np.random.default_rng(1)
    masks = random_masks(rng, 6, 300, 220)
    masks[0] = disk(300, 220, 110, 150, 140)  # touches all four borders
    boxes = masks_to_boxes(torch.from_numpy(masks))
    crop_size = tuple(int(s) for s in (boxes[:, 2:] - boxes[:, :2] + 1).amax(0).flip(0))
    assert_same_transforms(masks, crop_size=crop_size)
    assert_same_transforms(masks)


@pytest.mark.parametrize('max_block_elements', [1, 7, 64, None])
def test_squared_distances_equal_brute_force(max_block_elements):
    rng = np.random.default_rng(2)
    features = rng.random((5, 9, 13)) < 0.15
    features[1] = False  # no feature at all
    features[2, 4, 6] = True
    ys, xs = np.mgrid[:9, :13]
    pixels = np.stack([ys.ravel(), xs.ravel()], 1)
    ours = squared_distance_to_features(torch.from_numpy(features), max_block_elements)
    assert ours.shape == features.shape
    for k, feature in enumerate(features):
        if not feature.any():
            assert (ours[k] >= (9 + 13) ** 2).all()
            continue
        targets = np.argwhere(feature)
        brute = ((pixels[:, None] - targets[None]) ** 2).sum(-1).min(1).reshape(9, 13)
        np.testing.assert_array_equal(ours[k].numpy(), brute)
    transposed = squared_distance_to_features(torch.from_numpy(features).transpose(1, 2),
                                              max_block_elements)
    assert torch.equal(transposed.transpose(1, 2), ours)


def test_no_masks():
    masks = torch.zeros((0, H, W), dtype=torch.bool)
    crops, peaks = distance_box_crops_torch(masks, masks_to_boxes(masks))
    assert crops.shape == (0, 1, 1) and peaks.shape == (0, 2)
    points, found = farthest_background_in_box_torch(masks, masks_to_boxes(masks))
    assert points.shape == (0, 2) and found.shape == (0,)


def test_size_groups_and_crops_give_size_groups_with_their_largest_box():
    rng = np.random.default_rng(3)
    masks = torch.from_numpy(random_masks(rng, 30, 200, 150))
    boxes = masks_to_boxes(masks)
    grouped = size_groups_and_crops(boxes)
    assert [g.tolist() for g, _ in grouped] == [g.tolist() for g in size_groups(boxes)]
    for group, (crop_h, crop_w) in grouped:
        chosen = boxes[group]
        assert crop_h == int((chosen[:, 3] - chosen[:, 1]).max()) + 1
        assert crop_w == int((chosen[:, 2] - chosen[:, 0]).max()) + 1


def miner(**kwargs):
    return PromptMiner(encoder_size=128, low_res_size=(32, 32), **kwargs)


@pytest.mark.parametrize('settings', [{}, dict(use_mask=False), dict(add_neg=False),
                                      dict(use_point=False)])
def test_miner_prompts_are_the_same_with_either_backend(settings):
    rng = np.random.default_rng(4)
    for height, width in [(96, 120), (150, 70), (37, 53)]:
        masks = torch.from_numpy(random_masks(rng, 25, height, width))
        masks = masks[masks.flatten(1).any(1)]
        opencv = miner(distance_backend='opencv', **settings)(masks)
        ours = miner(distance_backend='torch', **settings)(masks)
        for name in ('points', 'labels', 'boxes', 'mask_inputs', 'expanded'):
            a, b = getattr(opencv, name), getattr(ours, name)
            assert (a is None) == (b is None), name
            if a is not None:
                assert a.dtype == b.dtype and torch.equal(a, b), name


def test_refined_masks_are_the_same_with_either_backend(tiny_sam, scene):
    image, masks = scene
    rng = np.random.default_rng(5)
    extra = torch.from_numpy(random_masks(rng, 8, *masks.shape[1:]))
    masks = torch.cat([torch.as_tensor(masks), extra[extra.flatten(1).any(1)]])
    refiner = SAMRefiner(tiny_sam, iters=2, elastic_margin=0.2)
    results = {}
    for backend in ('opencv', 'torch'):
        refiner.miner.distance_backend = backend
        results[backend] = refiner.refine(image, masks)
    assert torch.equal(results['opencv'].masks, results['torch'].masks)
    assert torch.equal(results['opencv'].scores, results['torch'].scores)
    for name in ('points', 'labels', 'boxes', 'mask_inputs', 'expanded'):
        assert torch.equal(getattr(results['opencv'].prompts, name),
                           getattr(results['torch'].prompts, name)), name


def test_auto_backend_is_opencv_on_the_cpu_and_is_checked():
    masks = torch.from_numpy(hand_made_masks()[:3])
    tight = masks_to_boxes(masks)
    assert isinstance(miner().distances(masks, tight), OpenCVDistances)
    assert isinstance(miner(distance_backend='torch').distances(masks, tight), TorchDistances)
    with pytest.raises(ValueError, match="distance_backend must be one of .*got 'cuda'"):
        miner(distance_backend='cuda')
    on_the_attribute = miner()
    with pytest.raises(ValueError, match="distance_backend must be one of .*got 'gpu'"):
        on_the_attribute.distance_backend = 'gpu'
    assert "distance_backend='torch'" in repr(miner(distance_backend='torch'))
    assert 'distance_backend' not in miner(distance_backend='torch').settings()


def test_torch_backend_copies_no_mask_to_the_host():
    """Host syncs of one call (:mod:`mmsamrefiner.testing.syncs`): OpenCV's
    path copies the masks, their boxes and every group's indices to the host
    and every result back; torch's reads the box sizes once, copies the
    groups' order once, and reads two window sizes per group (the mask
    prompt's resize)."""
    masks = torch.from_numpy(random_masks(np.random.default_rng(6), 40, 200, 300))
    masks = masks[masks.flatten(1).any(1)]
    groups = len(size_groups(masks_to_boxes(masks)))
    assert groups > 1
    counts = {}
    for backend in ('opencv', 'torch'):
        with count_host_syncs() as counts[backend]:
            miner(distance_backend=backend)(masks)
    assert counts['opencv']['cpu'] == 2 + groups
    assert counts['torch'] == {'tolist': 1, 'to device': 1, 'int': 2 * groups}
