# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Models whose predictions the test chooses, for real mmengine Runner loops:
the loop, dataset, pipeline, evaluator and hooks are the real ones, only the
model's ``predict`` is scripted (the predictions' frame is the original
image's, as mmdet and mmseg give them)."""
import os.path as osp

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy boxes of (N, H, W) bool masks (an empty mask: zeros)."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for index, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if len(xs):
            boxes[index] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return boxes


def no_instances(meta: dict, device) -> InstanceData:
    """What mmdet's Mask R-CNN predicts for an image without detections
    (mmdet's own ``empty_instances``: boxes, then (0, H, W) masks)."""
    from mmdet.models.utils import empty_instances
    results = empty_instances([meta], device, task_type='bbox')
    return empty_instances([meta], device, task_type='mask', instance_results=results,
                           mask_thr_binary=0.5)[0]


class ScriptedDetector(BaseModel):
    """An mmdet instance segmentor predicting, per ``img_id``, the ``(masks
    (N, H, W) bool, scores (N,), labels (N,))`` it was given; an id mapped to
    None predicts nothing."""

    def __init__(self, predictions: dict) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # the hook's device comes from it
        self.predictions = predictions

    def forward(self, inputs, data_samples=None, mode='predict'):
        assert mode == 'predict', f'a scripted model only predicts, not {mode!r}'
        for sample in data_samples:
            sample.pred_instances = self.instances(sample.metainfo)
        return data_samples

    def instances(self, meta: dict) -> InstanceData:
        prediction = self.predictions[meta['img_id']]
        device = self.weight.device
        if prediction is None:
            return no_instances(meta, device)
        masks, scores, labels = prediction
        return InstanceData(masks=torch.from_numpy(masks.copy()).to(device),
                            bboxes=torch.from_numpy(mask_boxes(masks)).to(device),
                            scores=torch.as_tensor(scores, dtype=torch.float32, device=device),
                            labels=torch.as_tensor(labels, dtype=torch.int64, device=device))


class ScriptedSegmentor(BaseModel):
    """An mmseg segmentor predicting, per image (its absolute ``img_path``),
    the (H, W) label map it was given."""

    def __init__(self, predictions: dict) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.predictions = {osp.normpath(osp.abspath(p)): m for p, m in predictions.items()}

    def forward(self, inputs, data_samples=None, mode='predict'):
        assert mode == 'predict', f'a scripted model only predicts, not {mode!r}'
        for sample in data_samples:
            label_map = self.predictions[osp.normpath(osp.abspath(sample.img_path))]
            sample.pred_sem_seg = PixelData(
                data=torch.from_numpy(label_map.astype(np.int64))[None].to(self.weight.device))
        return data_samples
