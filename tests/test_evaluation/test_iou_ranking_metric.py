# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""IoURankingMetric on hand-made model outputs."""
import pytest
import torch

from mmsamrefiner.evaluation import IoURankingMetric


def output(pred, sam, coarse, gt=None, adapted=None, plain=None):
    out = dict(iou_predictions=torch.tensor(pred), sam_iou_predictions=torch.tensor(sam),
               coarse_ious=torch.tensor(coarse))
    if gt is not None:
        out['gt_ious'] = torch.tensor(gt)
    if adapted is not None:
        out['refined_adapted'], out['refined_sam'] = adapted, plain
    return out


def test_top1_before_and_after_and_refined_iou():
    metric = IoURankingMetric()
    metric.process(None, [
        # adapted picks 2 = coarse target; SAM picked 0; gt best is 2
        output([.1, .2, .9], [.9, .2, .1], [.3, .4, .8], gt=[.2, .3, .9],
               adapted=(90, 100), plain=(50, 100)),
        # both pick 1; coarse target 1; gt best 0
        output([.1, .8, .2], [.1, .7, .2], [.3, .6, .5], gt=[.9, .3, .2],
               adapted=(10, 100), plain=(10, 100)),
        # no gt: adapted wrong (0 vs target 2), SAM right
        output([.9, .1, .2], [.1, .1, .8], [.1, .2, .7]),
    ])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['num_masks'] == 3 and metrics['num_masks_gt'] == 2
    assert metrics['top1_coarse'] == pytest.approx(200 / 3)
    assert metrics['top1_coarse_sam'] == pytest.approx(200 / 3)
    assert metrics['top1_gt'] == pytest.approx(50.0)
    assert metrics['top1_gt_sam'] == pytest.approx(0.0)
    assert metrics['refined_iou'] == pytest.approx(50.0)  # (90 + 10) / 200
    assert metrics['refined_iou_sam'] == pytest.approx(30.0)


def test_without_gt_only_coarse_ranking_is_reported():
    metric = IoURankingMetric()
    metric.process(None, [output([.1, .2, .9], [.9, .2, .1], [.3, .4, .8])])
    metrics = metric.compute_metrics(metric.results)
    assert set(metrics) == {'num_masks', 'top1_coarse', 'top1_coarse_sam', 'num_masks_gt'}
    assert (metrics['top1_coarse'], metrics['top1_coarse_sam']) == (100.0, 0.0)
