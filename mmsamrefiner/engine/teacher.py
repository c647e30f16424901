# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining a semi-supervised teacher's pseudo-masks (mmdet).

``SAMRefinerHook(refine_pseudo_labels=True)`` calls :func:`attach_mask_refiner`
before training: it checks that the model's student can learn masks from
the teacher (a :class:`~mmsamrefiner.models.semi_mask_detector.SemiMaskDetector`,
or any detector with its ``pseudo_mask_refiner`` slot) and puts a
:class:`TeacherMaskRefiner` there, which the detector calls right where the
teacher's masks are made.  Anything else is refused at start, with why and
what to use: refined masks that reach no loss would be a silent no-op.
"""
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


class TeacherMaskRefiner:
    """Refines the teacher's predicted masks in place, in the teacher's
    ``img_shape`` frame against its de-normalised input (the padded batch is
    cropped to each mask's size).

    Args:
        source: gives the refiner and the score threshold: anything with a
            ``refiner()`` method and a ``score_thr`` (the hook).
    """

    def __init__(self, source) -> None:
        self.source = source
        self.num_images = 0  # teacher images seen
        self.num_refined = 0  # instances refined (scored >= score_thr)

    def __call__(self, detector, batch_inputs: torch.Tensor, results) -> None:
        images, order = teacher_input_images(detector, batch_inputs)
        for image, result in zip(images, results):
            masks = result.pred_instances.masks
            image = image[:masks.shape[-2], :masks.shape[-1]]
            self.num_refined += refine_det_sample(self.source.refiner(), result, image, order,
                                                  self.source.score_thr)
            self.num_images += 1


def attach_mask_refiner(model, source) -> TeacherMaskRefiner:
    """Make ``model`` (or the model a wrapper holds) refine its teacher's
    pseudo-masks with ``source``'s refiner; returns the refiner put there.

    Raises:
        TypeError: ``model`` is not a semi-supervised detector, or one whose
            student never learns masks from the teacher (mmdet's
            ``SemiBaseDetector`` and ``SoftTeacher`` move pseudo-boxes only).
    """
    model = model.module if is_model_wrapper(model) else model
    name = type(model).__name__
    if not (hasattr(model, 'teacher') and hasattr(model, 'get_pseudo_instances')):
        raise TypeError('refine_pseudo_labels=True needs a semi-supervised detector that '
                        "carries the teacher's masks to the student: type='SemiMaskDetector' "
                        f"(mmsamrefiner, mmdet's SemiBaseDetector family); got {name}")
    if not hasattr(model, 'pseudo_mask_refiner'):
        what = ('trains its student on pseudo-boxes only (no mask loss on unlabeled images)'
                if name == 'SoftTeacher' else
                "moves only the teacher's boxes into the student's view, never its masks")
        raise TypeError(f'refine_pseudo_labels=True has no effect on {name}: it {what}, so '
                        'refined masks would reach no loss. Use '
                        "model=dict(type='SemiMaskDetector', detector=<a Mask R-CNN-like "
                        'detector>, ...) (mmsamrefiner), which projects the (refined) masks '
                        "into the student's view, or leave refine_pseudo_labels off")
    refiner = TeacherMaskRefiner(source)
    model.pseudo_mask_refiner = refiner
    return refiner
