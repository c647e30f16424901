# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``SAMRefinerHook``: refine the masks an mmdet or mmseg model predicts."""
import functools
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsamrefiner.io import CocoInstanceWriter, LabelMapWriter
from mmsamrefiner.registry import HOOKS, build_in_scope, register_also_in_root
from ..sample_refiner import (refine_det_sample, refine_seg_sample,
                              sample_image)

_STEP_OF_MODE = dict(val='val_step', test='test_step')


@register_also_in_root(HOOKS)
class SAMRefinerHook(Hook):
    """Refine predicted masks with SAMRefiner before the evaluator sees them.

    Works with mmdet instance segmentation models (``pred_instances.masks``,
    refined per instance) and mmseg models (``pred_sem_seg``, refined through
    split-then-merge).  mmengine's loops call ``evaluator.process`` before the
    ``after_*_iter`` hooks, so the hook wraps the model's ``val_step`` /
    ``test_step`` when a loop starts and restores them when it ends: metrics,
    visualisation and dumps all see the refined masks.

    Images: each sample's ``img_path`` is read (predictions are in the original
    image's frame); without one, the image is rebuilt from the batch input.

    Pseudo-label export (``out_dir``): as the run goes, each image's refined
    masks are written atomically (mmdet: a COCO part with RLE masks, merged
    into ``<out_dir>/instances.json`` at the end of the loop; mmseg: one PNG
    label map per image).  A re-run with the same ``out_dir`` resumes: images
    already written are read back instead of refined again.

    Semi-supervised training (``refine_pseudo_labels=True``): in mmdet's
    ``SemiBaseDetector`` family the teacher's predictions are refined (in the
    teacher's input frame, against the de-normalised teacher input) before
    they become the student's pseudo-instances.

    Args:
        refiner (dict | SAMRefiner): the refiner or its config.
        device (str, optional): where SAM runs; default the model's device.
        modes (Sequence[str]): loops to refine in: ``'val'``, ``'test'``.
        score_thr (float): mmdet instances scored under it keep their masks.
        keep_coarse (bool): keep the raw prediction alongside
            (``pred_instances.coarse_masks`` / ``coarse_sem_seg``).
        out_dir (str, optional): where to export refined pseudo-labels; a
            relative path is taken inside the runner's work dir.
        classes (Sequence[int], optional): mmseg class ids to refine (default:
            all present except ``background`` and ``ignore_index``).
        background (int): mmseg label of pixels no refined instance claims.
        ignore_index (int): mmseg label left alone.
        refine_pseudo_labels (bool): refine the teacher's pseudo-instances
            during semi-supervised training.
        channel_order (str): channel order of the batch inputs, used when an
            image must be rebuilt from them (MM loaders give ``'bgr'``).
        encode_batch (bool): encode the images of a batch in one image-encoder
            call (faster on GPUs; the masks equal the one-by-one ones up to
            float rounding).  Images whose export is read back are encoded too.
    """

    priority = 'LOW'

    def __init__(self,
                 refiner: Union[dict, torch.nn.Module],
                 device: Optional[str] = None,
                 modes: Sequence[str] = ('val', 'test'),
                 score_thr: float = 0.0,
                 keep_coarse: bool = False,
                 out_dir: Optional[str] = None,
                 classes: Optional[Sequence[int]] = None,
                 background: int = 0,
                 ignore_index: int = 255,
                 refine_pseudo_labels: bool = False,
                 channel_order: str = 'bgr',
                 encode_batch: bool = False) -> None:
        unknown = set(modes) - set(_STEP_OF_MODE)
        if unknown:
            raise ValueError(f'modes must be among {sorted(_STEP_OF_MODE)}, got {sorted(unknown)}')
        if channel_order not in ('rgb', 'bgr'):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self._refiner_cfg = refiner
        self._refiner = refiner if isinstance(refiner, torch.nn.Module) else None
        self.device = device
        self.modes = tuple(modes)
        self.score_thr = score_thr
        self.keep_coarse = keep_coarse
        self.out_dir = out_dir
        self.classes = classes
        self.background = background
        self.ignore_index = ignore_index
        self.refine_pseudo_labels = refine_pseudo_labels
        self.channel_order = channel_order
        self.encode_batch = encode_batch
        self.num_refined = 0
        self.num_resumed = 0
        self._writer = None
        self._dataset = None

    # -- set-up ---------------------------------------------------------------
    def refiner(self, runner=None):
        """The refiner, built on first use; with ``runner`` (at a loop's start)
        also moved to ``device`` (default: the model's) and set to eval."""
        if self._refiner is None:
            self._refiner = build_in_scope(self._refiner_cfg)
        if runner is not None:
            device = self.device or next(iter(runner.model.parameters()),
                                         torch.empty(0)).device
            self._refiner.to(device).eval()
        return self._refiner

    def _export_dir(self, runner) -> Optional[str]:
        if self.out_dir is None:
            return None
        return self.out_dir if osp.isabs(self.out_dir) else osp.join(runner.work_dir, self.out_dir)

    # -- val / test -----------------------------------------------------------
    def before_val(self, runner) -> None:
        self._wrap_step(runner, 'val')

    def before_test(self, runner) -> None:
        self._wrap_step(runner, 'test')

    def after_val(self, runner) -> None:
        self._finish(runner, 'val')

    def after_test(self, runner) -> None:
        self._finish(runner, 'test')

    def _wrap_step(self, runner, mode: str) -> None:
        if mode not in self.modes:
            return
        self.refiner(runner)
        self._writer = None
        self._dataset = getattr(runner, f'{mode}_loop').dataloader.dataset
        self.num_refined = self.num_resumed = 0
        model = runner.model
        step_name = _STEP_OF_MODE[mode]
        step = getattr(model, step_name)

        @functools.wraps(step)
        def refining_step(data_batch):
            outputs = step(data_batch)
            inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
            batch_inputs = [inputs[i] if inputs is not None else None for i in range(len(outputs))]
            embeddings = [None] * len(outputs)
            if self.encode_batch and outputs:
                embeddings = self._encode_images(outputs, batch_inputs)
            for data_sample, batch_input, embedding in zip(outputs, batch_inputs, embeddings):
                self.refine_sample(runner, data_sample, batch_input, embedding)
            return outputs

        setattr(model, step_name, refining_step)  # instance attribute shadows the method

    def _finish(self, runner, mode: str) -> None:
        if mode not in self.modes:
            return
        step_name = _STEP_OF_MODE[mode]
        if step_name in vars(runner.model):
            delattr(runner.model, step_name)
        if isinstance(self._writer, CocoInstanceWriter):
            barrier()
            if is_main_process():
                out_file = self._writer.merge()
                runner.logger.info(f'SAMRefinerHook: wrote {out_file}')
        runner.logger.info(f'SAMRefinerHook ({mode}): refined {self.num_refined} images, '
                           f'read back {self.num_resumed} already exported')

    @torch.no_grad()
    def _encode_images(self, data_samples, batch_inputs) -> list:
        """The samples' images in one encoder call: one ImageEmbedding each."""
        rgbs = []
        for data_sample, batch_input in zip(data_samples, batch_inputs):
            image, order = sample_image(data_sample, batch_input, self.channel_order)
            rgbs.append(image if order == 'rgb' else np.ascontiguousarray(image[..., ::-1]))
        return self.refiner().encode_images(rgbs)

    def _image_unless_encoded(self, data_sample, batch_input, image_embedding):
        """``(image, channel_order)`` of the sample, or ``(None, 'rgb')`` when
        its embedding is already there."""
        if image_embedding is not None:
            return None, 'rgb'
        return sample_image(data_sample, batch_input, self.channel_order)

    @torch.no_grad()
    def refine_sample(self, runner, data_sample, batch_input=None,
                      image_embedding=None) -> None:
        """Refine one prediction in place (or read its export back); the
        image's embedding is computed unless given."""
        if 'pred_instances' in data_sample:
            self._refine_instances(runner, data_sample, batch_input, image_embedding)
        elif 'pred_sem_seg' in data_sample:
            self._refine_label_map(runner, data_sample, batch_input, image_embedding)
        else:
            raise KeyError('SAMRefinerHook found neither pred_instances (mmdet) nor '
                           f'pred_sem_seg (mmseg) in the prediction; keys: {data_sample.keys()}')

    def _instance_writer(self, runner) -> Optional[CocoInstanceWriter]:
        out_dir = self._export_dir(runner)
        if out_dir is not None and self._writer is None:
            dataset = self._dataset
            classes = getattr(dataset, 'metainfo', {}).get('classes')
            if classes is None:
                raise ValueError('exporting COCO pseudo-labels needs the class names: the '
                                 f'{type(dataset).__name__} of this loop has no '
                                 'metainfo["classes"]')
            # mmdet's CocoDataset maps labels to COCO category ids; others get 1..K
            self._writer = CocoInstanceWriter(out_dir, classes, getattr(dataset, 'cat_ids', None))
        return self._writer

    def _refine_instances(self, runner, data_sample, batch_input, image_embedding) -> None:
        writer = self._instance_writer(runner)
        img_id = data_sample.metainfo.get('img_id', data_sample.metainfo.get('img_path'))
        instances = data_sample.pred_instances
        if writer is not None and writer.has(img_id):
            exported = writer.read(img_id)
            if len(exported['masks']) == len(instances):
                if self.keep_coarse:
                    instances.coarse_masks = instances.masks.clone()
                instances.masks = torch.from_numpy(exported['masks']).to(instances.scores.device)
                self.num_resumed += 1
                return
        image, order = self._image_unless_encoded(data_sample, batch_input, image_embedding)
        refine_det_sample(self.refiner(), data_sample, image, order, self.score_thr,
                          self.keep_coarse, image_embedding)
        self.num_refined += 1
        if writer is not None:
            img_path = data_sample.metainfo.get('img_path') or str(img_id)
            writer.write(img_id, osp.basename(img_path), instances.masks.cpu().numpy(),
                         instances.labels.cpu().numpy(), instances.scores.cpu().numpy())

    def _refine_label_map(self, runner, data_sample, batch_input, image_embedding) -> None:
        from mmengine.structures import PixelData
        out_dir = self._export_dir(runner)
        if out_dir is not None and self._writer is None:
            self._writer = LabelMapWriter(out_dir)
        writer = self._writer
        img_path = data_sample.metainfo.get('img_path')
        if writer is not None and img_path is None:
            raise KeyError('exporting label maps needs img_path in the data samples')
        if writer is not None and writer.has(img_path):
            label_map = data_sample.pred_sem_seg.data
            if self.keep_coarse:
                data_sample.coarse_sem_seg = PixelData(data=label_map.clone())
            exported = torch.from_numpy(writer.read(img_path))
            data_sample.pred_sem_seg = PixelData(
                data=exported.to(label_map.device, label_map.dtype)[None])
            self.num_resumed += 1
            return
        image, order = self._image_unless_encoded(data_sample, batch_input, image_embedding)
        refine_seg_sample(self.refiner(), data_sample, image, order, self.classes,
                          self.background, self.ignore_index, self.keep_coarse, image_embedding)
        self.num_refined += 1
        if writer is not None:
            writer.write(img_path, data_sample.pred_sem_seg.data[0].cpu().numpy())

    # -- semi-supervised training --------------------------------------------
    def before_train(self, runner) -> None:
        if not self.refine_pseudo_labels:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not (hasattr(model, 'get_pseudo_instances') and hasattr(model, 'teacher')):
            raise TypeError('refine_pseudo_labels=True needs a semi-supervised detector of '
                            "mmdet's SemiBaseDetector family (with a teacher and "
                            f'get_pseudo_instances); got {type(model).__name__}')
        self.refiner(runner)
        wrap_pseudo_instances(model, self)


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


def wrap_pseudo_instances(model, hook: SAMRefinerHook) -> None:
    """Make ``model.get_pseudo_instances`` refine the teacher's predictions.

    The teacher predicts with ``rescale=False``, so its masks lie in the
    teacher's input frame; they are refined there, against the de-normalised
    teacher input, before mmdet projects the boxes and hands them on.
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
                    refine_det_sample(hook.refiner(), result, image, order, hook.score_thr)
            return results

        teacher.predict = refining_predict
        try:
            return original(batch_inputs, batch_data_samples)
        finally:
            del teacher.predict

    get_pseudo_instances._samrefiner = True
    model.get_pseudo_instances = get_pseudo_instances
