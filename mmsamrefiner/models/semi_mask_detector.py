# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A semi-supervised detector whose student learns masks from the teacher.

mmdet's ``SemiBaseDetector`` moves the teacher's pseudo-instances into the
student's view by their boxes only, so an instance-segmentation student
cannot train on them.  :class:`SemiMaskDetector` carries the masks too, with
the homographies mmdet records for the boxes
(:func:`~mmsamrefiner.models.mask_projection.project_masks`):

1. the teacher predicts on its (weakly augmented) view with
   ``rescale=False``: (N, h_t, w_t) masks in the teacher's ``img_shape``
   frame;
2. :attr:`pseudo_mask_refiner`, when set (``SAMRefinerHook`` with
   ``refine_pseudo_labels=True`` sets it before training), refines them
   there, against the teacher's de-normalised input;
3. boxes and masks go back to the original image frame (the inverse of the
   teacher view's ``homography_matrix``; masks become (N, H, W) at
   ``ori_shape``), then into the student's (strongly augmented) view (its
   ``homography_matrix``; masks at its ``img_shape``, as ``BitmapMasks``, the
   type mmdet's mask targets take);
4. the student's loss on them is mmdet's (score filter ``cls_pseudo_thr``,
   ``min_pseudo_bbox_wh``, ``unsup_weight`` of ``semi_train_cfg``).

Use it as mmdet's ``SemiBaseDetector``: ``type='SemiMaskDetector'`` with a
Mask R-CNN-like ``detector``.
"""
import copy
from typing import Callable, List, Optional, Tuple

import torch
from mmdet.models.detectors import SemiBaseDetector
from mmdet.models.utils import filter_gt_instances
from mmdet.structures.bbox import bbox_project
from mmdet.structures.mask import BitmapMasks
from torch import Tensor

from mmsamrefiner.registry import MODELS
from mmsamrefiner.utils.masks import as_bool_tensor

from .mask_projection import project_masks

#: ``(detector, teacher_inputs, results) -> None``: refines the teacher's
#: results in place (``pred_instances.masks``, teacher ``img_shape`` frame).
PseudoMaskRefiner = Callable[['SemiMaskDetector', Tensor, List], None]


@MODELS.register_module()
class SemiMaskDetector(SemiBaseDetector):
    """mmdet's ``SemiBaseDetector``, with the teacher's masks (optionally
    refined) carried into the student's view.  Arguments as
    ``SemiBaseDetector``; the detector must predict masks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self.teacher, 'with_mask', False):
            raise TypeError(f'SemiMaskDetector needs a detector that predicts masks (e.g. Mask '
                            f'R-CNN); {type(self.teacher).__name__} has no mask head')
        self.pseudo_mask_refiner: Optional[PseudoMaskRefiner] = None

    @torch.no_grad()
    def get_pseudo_instances(self, batch_inputs: Tensor,
                             batch_data_samples: List) -> Tuple[List, dict]:
        """The teacher's predictions as ``gt_instances`` in the original image
        frame: boxes xyxy, masks (N, H, W) bool at ``ori_shape``."""
        self.teacher.eval()
        results = self.teacher.predict(batch_inputs, batch_data_samples, rescale=False)
        if self.pseudo_mask_refiner is not None:
            self.pseudo_mask_refiner(self, batch_inputs, results)
        for data_sample, result in zip(batch_data_samples, results):
            instances = result.pred_instances
            to_original = torch.linalg.inv(torch.as_tensor(
                data_sample.homography_matrix, dtype=torch.float32)).to(instances.bboxes.device)
            instances.bboxes = bbox_project(instances.bboxes, to_original, data_sample.ori_shape)
            instances.masks = project_masks(as_bool_tensor(instances.masks), to_original,
                                            data_sample.ori_shape)
            data_sample.gt_instances = instances
        return batch_data_samples, {}

    def project_pseudo_instances(self, batch_pseudo_instances: List,
                                 batch_data_samples: List) -> List:
        """Move pseudo-instances from the original frame into the student's
        view: boxes, and masks as ``BitmapMasks`` at the view's ``img_shape``."""
        for pseudo, data_sample in zip(batch_pseudo_instances, batch_data_samples):
            instances = copy.deepcopy(pseudo.gt_instances)
            to_view = torch.as_tensor(data_sample.homography_matrix,
                                      dtype=torch.float32).to(instances.bboxes.device)
            height, width = data_sample.img_shape[:2]
            instances.bboxes = bbox_project(instances.bboxes, to_view, data_sample.img_shape)
            masks = project_masks(as_bool_tensor(instances.masks), to_view, (height, width))
            instances.masks = BitmapMasks(masks.cpu().numpy().astype('uint8'), height, width)
            data_sample.gt_instances = instances
        wh_thr = self.semi_train_cfg.get('min_pseudo_bbox_wh', (1e-2, 1e-2))
        return filter_gt_instances(batch_data_samples, wh_thr=wh_thr)

