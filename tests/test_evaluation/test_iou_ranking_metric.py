# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""IoURankingMetric on hand-made model outputs."""
import pytest
import torch

from mmsamrefiner.evaluation import IoURankingMetric


def output(box, box_sam, coarse, refine=None, refine_sam=None, gt=None, adapted=None,
           plain=None):
    """One mask's ``IoUAdapterModel.predict`` dict: box-prompt predictions
    (adapted, plain SAM) and coarse IoUs; refinement-prompt predictions and gt
    IoUs; refined (intersection, union) counts."""
    out = dict(box_iou_predictions=torch.tensor(box),
               box_sam_iou_predictions=torch.tensor(box_sam),
               box_coarse_ious=torch.tensor(coarse))
    if gt is not None:
        out.update(refine_iou_predictions=torch.tensor(refine),
                   refine_sam_iou_predictions=torch.tensor(refine_sam),
                   refine_gt_ious=torch.tensor(gt))
    if adapted is not None:
        out['refined_adapted'], out['refined_sam'] = adapted, plain
    return out


def test_top1_before_and_after_and_refined_iou():
    metric = IoURankingMetric()
    metric.process(None, [
        # box: adapted picks 2 = coarse target, SAM 0; refine: adapted picks 2
        # = gt best, SAM 0
        output([.1, .2, .9], [.9, .2, .1], [.3, .4, .8],
               refine=[.1, .2, .9], refine_sam=[.9, .2, .1], gt=[.2, .3, .9],
               adapted=(90, 100), plain=(50, 100)),
        # box: both pick 1 = coarse target; refine: both pick 1, gt best 0
        output([.1, .8, .2], [.1, .7, .2], [.3, .6, .5],
               refine=[.1, .8, .2], refine_sam=[.1, .7, .2], gt=[.9, .3, .2],
               adapted=(10, 100), plain=(10, 100)),
        # no gt: box adapted wrong (0 vs target 2), SAM right
        output([.9, .1, .2], [.1, .1, .8], [.1, .2, .7]),
    ])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['num_masks'] == 3 and metrics['num_masks_gt'] == 2
    assert metrics['top1_coarse_box'] == pytest.approx(200 / 3)
    assert metrics['top1_coarse_box_sam'] == pytest.approx(200 / 3)
    assert metrics['top1_gt_refine'] == pytest.approx(50.0)
    assert metrics['top1_gt_refine_sam'] == pytest.approx(0.0)
    assert metrics['refined_iou'] == pytest.approx(50.0)  # (90 + 10) / 200
    assert metrics['refined_iou_sam'] == pytest.approx(30.0)


def test_gt_top1_ranks_the_refinement_candidates_not_the_box_ones():
    # The box-prompt candidates are ranked right against the coarse target,
    # the refinement candidates wrong against gt: gt top-1 counts the latter.
    metric = IoURankingMetric()
    metric.process(None, [
        output([.1, .2, .9], [.1, .2, .9], [.3, .4, .8],
               refine=[.9, .2, .1], refine_sam=[.1, .9, .2], gt=[.2, .3, .9]),
    ])
    metrics = metric.compute_metrics(metric.results)
    assert (metrics['top1_coarse_box'], metrics['top1_coarse_box_sam']) == (100.0, 100.0)
    assert (metrics['top1_gt_refine'], metrics['top1_gt_refine_sam']) == (0.0, 0.0)


def test_without_gt_only_coarse_box_ranking_is_reported():
    metric = IoURankingMetric()
    metric.process(None, [output([.1, .2, .9], [.9, .2, .1], [.3, .4, .8])])
    metrics = metric.compute_metrics(metric.results)
    assert set(metrics) == {'num_masks', 'top1_coarse_box', 'top1_coarse_box_sam',
                            'num_masks_gt'}
    assert (metrics['top1_coarse_box'], metrics['top1_coarse_box_sam']) == (100.0, 0.0)
