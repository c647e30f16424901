# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``MaskRefinementMetric``: mIoU and boundary IoU of predicted masks, for MM evaluators."""
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmsamrefiner.registry import METRICS

from ..collection_metrics import instance_stats, label_map_stats, reduce_label_map_stats


def _to_numpy_masks(masks) -> np.ndarray:
    if hasattr(masks, 'to_ndarray'):  # mmdet BitmapMasks / PolygonMasks
        masks = masks.to_ndarray()
    if isinstance(masks, torch.Tensor):
        masks = masks.cpu().numpy()
    return np.asarray(masks).astype(bool)


@METRICS.register_module()
class MaskRefinementMetric(BaseMetric):
    """The numbers of ``tools/refine.py --eval`` inside an MM evaluator.

    * mmdet samples (``pred_instances.masks`` vs ``gt_instances.masks``): mean
      IoU and boundary IoU of greedily matched masks, unmatched predictions
      scoring 0;
    * mmseg samples (``pred_sem_seg`` vs ``gt_sem_seg``): dataset class mIoU
      (``ignore_index`` left out) and mean boundary IoU of per-image class masks.

    Boundary IoU follows Cheng et al. 2021 (dilation ratio 0.02).  Keys:
    ``<prefix>/mIoU`` and ``<prefix>/bIoU`` in percent.
    """
    default_prefix = 'refine'

    def __init__(self, ignore_index: int = 255, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_instances' in sample:
                pred = _to_numpy_masks(sample['pred_instances']['masks'])
                gt = _to_numpy_masks(sample['gt_instances']['masks'])
                self.results.append(('instances', instance_stats(pred, gt)))
            else:
                pred = sample['pred_sem_seg']['data'][0].cpu().numpy()
                gt = sample['gt_sem_seg']['data'][0].cpu().numpy()
                self.results.append(('semantic', label_map_stats(pred, gt, self.ignore_index)))

    def compute_metrics(self, results: list) -> dict:
        semantic = [stats for kind, stats in results if kind == 'semantic']
        if semantic:
            metrics = reduce_label_map_stats(semantic)
        else:
            ious = [v for _, (i, _) in results for v in i]
            bious = [v for _, (_, b) in results for v in b]
            metrics = dict(miou=float(np.mean(ious)) if ious else 0.0,
                           biou=float(np.mean(bious)) if bious else 0.0)
        return dict(mIoU=100 * metrics['miou'], bIoU=100 * metrics['biou'])
