# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining the predictions held by mmdet/mmseg data samples.

The one place where MM data samples meet :class:`~mmsamrefiner.SAMRefiner`:
:class:`SAMRefinerHook` (through the prediction kinds of
:mod:`mmsamrefiner.engine.prediction_kinds`) and the semi-supervised teacher's
mask refiner (:mod:`mmsamrefiner.engine.teacher`) go through it.
``tools/refine.py`` does not: it refines coarse-mask files, not data samples,
through :func:`mmsamrefiner.apis.refine_collection`.

* :func:`refine_det_sample`: ``DetDataSample.pred_instances.masks``
  ((N, H, W) bool tensor, original image frame since mmdet rescales
  predictions) are refined in place; instances scored under ``score_thr`` are
  left as they are.  The refiner's signals go beside them:
  ``pred_instances.refined_scores``, ``.refined_stability``,
  ``.refined_coarse_iou`` ((N,) float32, 0 for instances left as they are).
* :func:`refine_seg_sample`: ``SegDataSample.pred_sem_seg`` ((1, H, W) label
  map) goes through split-then-merge; the signals of each refined class
  (:func:`mmsamrefiner.refiner.signals.class_signals`) go to the field
  ``refined_classes`` (a table, column -> array).
* :func:`sample_image`: the image the predictions refer to, read from
  ``img_path`` or rebuilt from the batch input.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.refiner.inputs import load_rgb_image
from mmsamrefiner.utils.masks import as_bool_tensor


def sample_image(data_sample, batch_input: Optional[torch.Tensor] = None,
                 channel_order: str = 'bgr') -> Tuple[np.ndarray, str]:
    """The image of ``data_sample`` in its original frame, and its channel order.

    Reads ``img_path`` from the metainfo when it is a readable file (returns
    RGB).  Otherwise rebuilds the image from ``batch_input``, the (3, h, w)
    uint8 tensor the pipeline packed (``img_shape`` frame, before the data
    preprocessor; channel order ``channel_order``, BGR for MM's loaders),
    resized back to ``ori_shape`` (bilinear).  Pipelines that flip or crop at
    test time cannot be undone this way: give them ``img_path``.
    """
    img_path = data_sample.metainfo.get('img_path')
    if img_path:
        try:
            return load_rgb_image(img_path), 'rgb'
        except (IOError, OSError, ValueError):
            if batch_input is None:
                raise
    if batch_input is None:
        raise ValueError('the data sample has no readable img_path and no batch input was '
                         'given, so there is no image to refine against')
    h, w = data_sample.metainfo.get('img_shape', batch_input.shape[-2:])
    image = batch_input[:, :h, :w].permute(1, 2, 0).cpu().numpy()
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    ori_h, ori_w = data_sample.metainfo.get('ori_shape', (h, w))
    if (ori_h, ori_w) != (h, w):
        image = cv2.resize(image, (ori_w, ori_h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image), channel_order


def refine_det_sample(refiner: SAMRefiner, data_sample, image: Optional[np.ndarray],
                      channel_order: str = 'rgb', score_thr: float = 0.0,
                      keep_coarse: bool = False, image_embedding=None) -> int:
    """Refine ``data_sample.pred_instances.masks`` in place; returns how many.

    Args:
        refiner: the refiner.
        data_sample: a ``DetDataSample`` whose ``pred_instances`` has ``masks``
            (N, H, W) bool and ``scores`` (N,), H x W = the image's size.
        image: (H, W, 3) uint8 in ``channel_order`` (None when
            ``image_embedding`` is given, or when no instance is scored at
            least ``score_thr``).
        score_thr: instances with a lower score keep their masks.
        keep_coarse: store the unrefined masks as ``pred_instances.coarse_masks``.
        image_embedding: the image's precomputed ``ImageEmbedding``.
    """
    instances = data_sample.pred_instances
    if 'masks' not in instances:
        raise ValueError('pred_instances has no masks: SAMRefinerHook needs an instance '
                         'segmentation model (e.g. Mask R-CNN), not a box-only detector')
    masks = as_bool_tensor(instances.masks)
    if keep_coarse:
        instances.coarse_masks = masks.clone()
    for name in SIGNALS.values():
        setattr(instances, name, torch.zeros(len(masks), dtype=torch.float32,
                                             device=masks.device))
    selected = torch.nonzero(instances.scores >= score_thr).flatten()
    if len(selected) == 0:
        instances.masks = masks
        return 0
    result = refiner.refine(image, masks[selected].cpu().numpy(), channel_order=channel_order,
                            image_embedding=image_embedding)
    refined = masks.clone()
    refined[selected] = torch.from_numpy(result.masks).to(masks.device)
    instances.masks = refined
    for source, name in SIGNALS.items():
        value = getattr(result, source, None)
        if value is not None:
            getattr(instances, name)[selected] = torch.as_tensor(
                np.asarray(value, np.float32), device=masks.device)
    return len(selected)


#: a refine result's signal -> its field in ``pred_instances``
SIGNALS = dict(scores='refined_scores', stability='refined_stability',
               coarse_iou='refined_coarse_iou')


def refine_seg_sample(refiner: SAMRefiner, data_sample, image: Optional[np.ndarray],
                      channel_order: str = 'rgb', classes: Optional[Sequence[int]] = None,
                      background: int = 0, ignore_index: Optional[int] = 255,
                      keep_coarse: bool = False, image_embedding=None) -> None:
    """Refine ``data_sample.pred_sem_seg`` in place through split-then-merge.

    Args:
        data_sample: a ``SegDataSample`` whose ``pred_sem_seg.data`` is a
            (1, H, W) integer label map, H x W = the image's size.
        image: (H, W, 3) uint8 in ``channel_order`` (None when the map holds
            no class to refine).
        classes, background, ignore_index: as in
            :meth:`SAMRefiner.refine_semantic`.
        keep_coarse: store the unrefined map as ``coarse_sem_seg``.
        image_embedding: the image's precomputed ``ImageEmbedding`` (then
            ``image`` may be None).
    """
    from mmengine.structures import PixelData
    label_map = data_sample.pred_sem_seg.data
    if keep_coarse:
        data_sample.coarse_sem_seg = PixelData(data=label_map.clone())
    options = dict(ignore_index=ignore_index, classes=classes, background=background,
                   channel_order=channel_order, image_embedding=image_embedding)
    if hasattr(refiner, 'refine_label_map'):
        result = refiner.refine_label_map(image, label_map[0].cpu().numpy(), **options)
        refined = result.label_map
        data_sample.set_field(result.classes, 'refined_classes')
    else:  # any object with refine_semantic
        refined = refiner.refine_semantic(image, label_map[0].cpu().numpy(), **options)
    data_sample.pred_sem_seg = PixelData(
        data=torch.from_numpy(refined).to(label_map.device, label_map.dtype)[None])
