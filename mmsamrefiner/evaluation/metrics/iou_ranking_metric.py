# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``IoURankingMetric``: how well SAM's predicted IoUs rank its candidates
(SAMRefiner++ validation), before and after IoU adapter training."""
from typing import Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmsamrefiner.registry import METRICS


@METRICS.register_module()
class IoURankingMetric(BaseMetric):
    """Top-1 ranking accuracy and refined-mask IoU of :class:`IoUAdapterModel`.

    Reads the per-mask dicts of ``IoUAdapterModel.predict``.  Keys (percent),
    each with the adapter and, ending in ``_sam``, for plain SAM:

    * ``top1_gt_refine`` / ``top1_gt_refine_sam``: how often the top-scored
      candidate of the refinement prompts (points, box, mask prompt, as the
      refiner mines them from the coarse mask) is the one with the highest IoU
      against the ground-truth mask (masks with ground truth only; the
      authors' top-1 accuracy);
    * ``top1_coarse_box`` / ``top1_coarse_box_sam``: how often the top-scored
      candidate of the tight-box prompt alone is the one with the highest IoU
      against the coarse mask (the training target; all masks);
    * ``refined_iou`` / ``refined_iou_sam``: dataset IoU (summed intersections
      over summed unions) of the fully refined masks with ground truth;
    * ``num_masks``, ``num_masks_gt``.
    """
    default_prefix = 'adapt'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            target = out['box_coarse_ious'].argmax()
            row = dict(
                coarse_box=int(out['box_iou_predictions'].argmax() == target),
                coarse_box_sam=int(out['box_sam_iou_predictions'].argmax() == target))
            if 'refine_gt_ious' in out:
                best = out['refine_gt_ious'].argmax()
                row.update(gt_refine=int(out['refine_iou_predictions'].argmax() == best),
                           gt_refine_sam=int(out['refine_sam_iou_predictions'].argmax() == best))
            for name in ('adapted', 'sam'):
                if f'refined_{name}' in out:
                    row[f'refined_{name}'] = out[f'refined_{name}']
            self.results.append(row)

    def compute_metrics(self, results: list) -> dict:
        metrics = dict(num_masks=len(results))
        if not results:
            return metrics
        for key in ('coarse_box', 'coarse_box_sam'):
            metrics[f'top1_{key}'] = 100.0 * float(np.mean([r[key] for r in results]))
        with_gt = [r for r in results if 'gt_refine' in r]
        metrics['num_masks_gt'] = len(with_gt)
        if with_gt:
            for key in ('gt_refine', 'gt_refine_sam'):
                metrics[f'top1_{key}'] = 100.0 * float(np.mean([r[key] for r in with_gt]))
        for name, key in (('adapted', 'refined_iou'), ('sam', 'refined_iou_sam')):
            pairs = [r[f'refined_{name}'] for r in results if f'refined_{name}' in r]
            if pairs:
                inter, union = np.sum(pairs, axis=0)
                metrics[key] = 100.0 * float(inter) / max(float(union), 1.0)
        return metrics
