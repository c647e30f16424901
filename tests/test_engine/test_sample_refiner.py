# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The helpers between MM data samples and SAMRefiner."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmsamrefiner import SAMRefiner
from mmsamrefiner.engine import refine_det_sample, sample_image


def test_image_is_rebuilt_from_the_batch_input_in_the_original_frame():
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, 40:] = (255, 0, 0)  # right half blue (BGR)
    batch_input = torch.zeros(3, 64, 96, dtype=torch.uint8)  # padded
    batch_input[:, :60, :80] = torch.from_numpy(image).permute(2, 0, 1)
    sample = DetDataSample(metainfo=dict(img_shape=(60, 80), ori_shape=(30, 40)))
    rebuilt, order = sample_image(sample, batch_input)
    assert order == 'bgr' and rebuilt.shape == (30, 40, 3)
    assert (rebuilt[:, :19] == 0).all() and (rebuilt[:, 21:, 0] == 255).all()


def test_no_image_at_all_is_a_clear_error():
    with pytest.raises(ValueError, match='no readable img_path'):
        sample_image(DetDataSample(metainfo=dict()))


def test_box_only_predictions_are_refused(tiny_sam, scene):
    sample = DetDataSample()
    sample.pred_instances = InstanceData(bboxes=torch.zeros(1, 4), scores=torch.ones(1))
    with pytest.raises(ValueError, match='instance segmentation model'):
        refine_det_sample(SAMRefiner(tiny_sam), sample, scene[0])


def test_only_instances_at_or_above_the_threshold_are_refined(tiny_sam, scene):
    image, masks = scene
    sample = DetDataSample()
    sample.pred_instances = InstanceData(masks=torch.from_numpy(masks),
                                         scores=torch.tensor([0.9, 0.2]))
    refiner = SAMRefiner(tiny_sam, iters=1)
    assert refine_det_sample(refiner, sample, image, score_thr=0.5, keep_coarse=True) == 1
    refined = sample.pred_instances.masks
    np.testing.assert_array_equal(refined[1].numpy(), masks[1])  # left as it was
    np.testing.assert_array_equal(refined[0].numpy(),
                                  refiner.refine(image, masks[:1]).masks[0])
    np.testing.assert_array_equal(sample.pred_instances.coarse_masks.numpy(), masks)
