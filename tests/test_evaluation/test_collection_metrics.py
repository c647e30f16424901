# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Collection scores and the MM metric against hand-computed values."""
import numpy as np
import pytest
import torch

from mmsamrefiner.evaluation import (
    MaskRefinementMetric,
    evaluate_instances,
    evaluate_label_maps,
    evaluate_mask_pairs,
)
from mmsamrefiner.mask_io import encode_rle
from mmsamrefiner.utils.masks import match_masks


def box_mask(y1, x1, y2, x2, shape=(20, 20)):
    mask = np.zeros(shape, bool)
    mask[y1:y2, x1:x2] = True
    return mask


def test_mask_pairs_hand_computed():
    gt = box_mask(0, 0, 10, 10)            # 100 px
    pred = box_mask(0, 0, 10, 5)           # 50 px inside: IoU 0.5
    scores = evaluate_mask_pairs([(pred, gt), (gt, gt)])
    assert scores['miou'] == pytest.approx(0.75)
    assert scores['biou'] < 0.75 + 1e-9 and scores['biou'] > 0.5  # identical pair scores 1


def test_greedy_matching_pairs_best_first():
    a, b = box_mask(0, 0, 10, 10), box_mask(10, 10, 20, 20)
    pred = np.stack([b, a, box_mask(0, 10, 5, 15)])
    assert sorted(match_masks(pred, np.stack([a, b]))) == [(0, 1), (1, 0)]


def test_label_map_miou_sums_over_images_and_skips_ignored():
    gt = np.zeros((4, 4), np.int64)
    gt[:, 2:] = 1
    gt[0, 0] = 255
    pred = np.zeros((4, 4), np.int64)
    pred[:, 3:] = 1                       # class 1: 4 of 8 -> 0.5
    pred[0, 0] = 1                        # ignored pixel: not counted
    scores = evaluate_label_maps([(pred, gt)], ignore_index=255)
    # class 0: inter 7 (8 minus the ignored), union 11 -> 7/11; class 1: 4/8
    assert scores['miou'] == pytest.approx((7 / 11 + 0.5) / 2)


def test_instances_match_by_id_and_score_ap():
    a, b = box_mask(0, 0, 10, 10), box_mask(10, 10, 20, 20)
    image = dict(id=1, file_name='x.png', height=20, width=20)
    cats = [dict(id=1, name='thing')]

    def coco(masks, ids):
        return dict(images=[image], categories=cats, annotations=[
            dict(id=i, image_id=1, category_id=1, segmentation=rle, area=int(m.sum()),
                 bbox=[0, 0, 1, 1], iscrowd=0) for i, m, rle in zip(ids, masks, encode_rle(
                     np.stack(masks)))])

    gt = coco([a, b], [1, 2])
    perfect = evaluate_instances(gt, gt)
    assert perfect['miou'] == 1.0 and perfect['biou'] == 1.0 and perfect['ap'] == pytest.approx(1.0)
    half = evaluate_instances(coco([box_mask(0, 0, 10, 5), b], [1, 2]), gt)
    assert half['miou'] == pytest.approx(0.75)
    assert half['ap50'] == pytest.approx(1.0) and half['ap'] < 1.0


def test_mm_metric_gives_the_tool_numbers():
    a, b = box_mask(0, 0, 10, 10), box_mask(10, 10, 20, 20)
    metric = MaskRefinementMetric()
    predicted = torch.from_numpy(np.stack([b, a[:, ::-1]]))
    metric.process(None, [dict(pred_instances=dict(masks=predicted),
                               gt_instances=dict(masks=torch.from_numpy(np.stack([a, b]))))])
    out = metric.compute_metrics(metric.results)
    expected = evaluate_mask_pairs([(b, b), (a[:, ::-1], a)])
    assert out['mIoU'] == pytest.approx(100 * expected['miou'])
    assert out['bIoU'] == pytest.approx(100 * expected['biou'])

    gt = np.zeros((1, 4, 4), np.int64)
    gt[0, :, 2:] = 1
    metric = MaskRefinementMetric()
    metric.process(None, [dict(pred_sem_seg=dict(data=torch.from_numpy(gt)),
                               gt_sem_seg=dict(data=torch.from_numpy(gt)))])
    assert metric.compute_metrics(metric.results)['mIoU'] == pytest.approx(100.0)


def test_mm_metric_builds_by_name_from_mmseg_scope():
    from mmengine.registry import METRICS, DefaultScope

    import mmsamrefiner  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert isinstance(METRICS.build(dict(type='MaskRefinementMetric')), MaskRefinementMetric)
