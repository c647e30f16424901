# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``IoURankingMetric``: how well SAM's predicted IoUs rank its candidates
(SAMRefiner++ validation), before and after IoU adaption."""
from typing import Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmsamrefiner.registry import METRICS


@METRICS.register_module()
class IoURankingMetric(BaseMetric):
    """Top-1 ranking accuracy and refined-mask IoU of :class:`IoUAdaptionModel`.

    Reads the per-mask dicts of ``IoUAdaptionModel.predict``.  Keys (percent):

    * ``top1_coarse`` / ``top1_coarse_sam``: how often the top-scored
      box-prompt candidate is the one with the highest IoU against the coarse
      mask (the training target), with the adaptor / plain SAM;
    * ``top1_gt`` / ``top1_gt_sam``: the same against the ground-truth mask
      (masks with ground truth only; the paper's top-1 accuracy);
    * ``refined_iou`` / ``refined_iou_sam``: dataset IoU (summed intersections
      over summed unions) of the fully refined masks with ground truth, with
      the adaptor / plain SAM;
    * ``num_masks``, ``num_masks_gt``.
    """
    default_prefix = 'adapt'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            row = dict(
                coarse=int(out['iou_predictions'].argmax() == out['coarse_ious'].argmax()),
                coarse_sam=int(out['sam_iou_predictions'].argmax() == out['coarse_ious'].argmax()))
            if 'gt_ious' in out:
                best = out['gt_ious'].argmax()
                row.update(gt=int(out['iou_predictions'].argmax() == best),
                           gt_sam=int(out['sam_iou_predictions'].argmax() == best))
            for name in ('adapted', 'sam'):
                if f'refined_{name}' in out:
                    row[f'refined_{name}'] = out[f'refined_{name}']
            self.results.append(row)

    def compute_metrics(self, results: list) -> dict:
        metrics = dict(num_masks=len(results))
        if not results:
            return metrics
        for key in ('coarse', 'coarse_sam'):
            metrics[f'top1_{key}'] = 100.0 * float(np.mean([r[key] for r in results]))
        with_gt = [r for r in results if 'gt' in r]
        metrics['num_masks_gt'] = len(with_gt)
        if with_gt:
            for key in ('gt', 'gt_sam'):
                metrics[f'top1_{key}'] = 100.0 * float(np.mean([r[key] for r in with_gt]))
        for name, key in (('adapted', 'refined_iou'), ('sam', 'refined_iou_sam')):
            pairs = [r[f'refined_{name}'] for r in results if f'refined_{name}' in r]
            if pairs:
                inter, union = np.sum(pairs, axis=0)
                metrics[key] = 100.0 * float(inter) / max(float(union), 1.0)
        return metrics
