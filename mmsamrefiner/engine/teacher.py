# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining a semi-supervised teacher's pseudo-instances (mmdet).

``SAMRefinerHook(refine_pseudo_labels=True)`` calls :func:`semi_detector`
and :func:`wrap_pseudo_instances` before training: in mmdet's
``SemiBaseDetector`` family the teacher's predictions are refined (in the
teacher's input frame, against the de-normalised teacher input) before they
become the student's pseudo-instances.

This module patches ``model.get_pseudo_instances`` so that, while it runs,
``teacher.predict`` refines what it returns.  Detectors whose
``get_pseudo_instances`` does not go through ``teacher.predict`` (mmdet's
``SoftTeacher`` calls ``teacher.roi_head.predict``) are not covered yet; the
patch is kept here, apart from the hook, so that it can be replaced.
"""
import functools

import torch
from mmengine.model import is_model_wrapper

from .sample_refiner import refine_det_sample


def teacher_input_images(model, batch_inputs: torch.Tensor):
    """De-normalise the teacher's (B, 3, h, w) batch back to uint8 images.

    Returns the (B, h, w, 3) uint8 array and its channel order: the data
    preprocessor's ``mean``/``std`` are undone; inputs it converted BGR->RGB
    are RGB, others BGR (MM loaders read BGR).
    """
    preprocessor = model.data_preprocessor
    images = batch_inputs.float()
    if getattr(preprocessor, '_enable_normalize', False):
        images = images * preprocessor.std + preprocessor.mean
    images = images.clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    order = 'rgb' if getattr(preprocessor, '_channel_conversion', False) else 'bgr'
    return images, order


def wrap_pseudo_instances(model, source) -> None:
    """Make ``model.get_pseudo_instances`` refine the teacher's predictions.

    ``source`` gives the refiner and the score threshold: anything with a
    ``refiner()`` method and a ``score_thr`` (the hook).  The teacher predicts
    with ``rescale=False``, so its masks lie in the teacher's input frame;
    they are refined there, against the de-normalised teacher input, before
    mmdet projects the boxes and hands them on.  Patching twice is a no-op.
    """
    if getattr(model.get_pseudo_instances, '_samrefiner', False):
        return
    original = model.get_pseudo_instances
    teacher = model.teacher

    @functools.wraps(original)
    def get_pseudo_instances(batch_inputs, batch_data_samples):
        predict = teacher.predict

        def refining_predict(inputs, data_samples, rescale=True):
            results = predict(inputs, data_samples, rescale=rescale)
            images, order = teacher_input_images(model, inputs)
            for image, result in zip(images, results):
                if 'pred_instances' in result and 'masks' in result.pred_instances:
                    masks = result.pred_instances.masks
                    image = image[:masks.shape[-2], :masks.shape[-1]]
                    refine_det_sample(source.refiner(), result, image, order, source.score_thr)
            return results

        teacher.predict = refining_predict
        try:
            return original(batch_inputs, batch_data_samples)
        finally:
            del teacher.predict

    get_pseudo_instances._samrefiner = True
    model.get_pseudo_instances = get_pseudo_instances


def semi_detector(model):
    """``model`` (or the model a wrapper holds), checked to be a
    semi-supervised detector that :func:`wrap_pseudo_instances` can patch.

    Raises:
        TypeError: it has no ``teacher`` and ``get_pseudo_instances``.
    """
    model = model.module if is_model_wrapper(model) else model
    if not (hasattr(model, 'get_pseudo_instances') and hasattr(model, 'teacher')):
        raise TypeError('refine_pseudo_labels=True needs a semi-supervised detector of '
                        "mmdet's SemiBaseDetector family (with a teacher and "
                        f'get_pseudo_instances); got {type(model).__name__}')
    return model
