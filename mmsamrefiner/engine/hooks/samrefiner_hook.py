# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``SAMRefinerHook``: refine the masks an mmdet or mmseg model predicts."""
import functools
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsamrefiner.io import CocoInstanceWriter, LabelMapWriter
from mmsamrefiner.registry import HOOKS, build_in_scope, register_also_in_root
from ..sample_refiner import (image_identity, prediction_digest,
                              refine_det_sample, refine_seg_sample, sample_image)

_STEP_OF_MODE = dict(val='val_step', test='test_step')
#: What an export's key names, in the order the log reports mismatches.
_KEY_FIELDS = ('prediction', 'image', 'refiner', 'settings')
#: Why an export was stale: its key is of another version (written by another
#: release of the hook), a key field differs, the export has no key (written
#: before keys, or by another tool), or the key matches but the file does not
#: (a label map whose sidecar belongs to another write, an unreadable part).
_STALE_REASONS = ('version', ) + _KEY_FIELDS + ('unkeyed', 'damaged')
_REASON_TEXT = dict(version='key of another version', unkeyed='no key',
                    damaged='unreadable or torn')
#: Bumped when the key's format or the refinement it describes changes
#: (2: digests of :mod:`mmsamrefiner.utils.digest`).
_KEY_VERSION = 2


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
    label map per image), each with the key of what it was computed from:

    * ``prediction``: SHA-1 of the model's unrefined prediction (mmdet: masks,
      scores and labels; mmseg: the label map);
    * ``image``: the image file's absolute path, size and mtime (or, for an
      image rebuilt from the batch input, a digest of its pixels);
    * ``refiner``: :meth:`SAMRefiner.fingerprint` (its settings and the
      *content* of SAM's weights and of an IoU adaptor);
    * ``settings``: the hook's own (mmdet: ``score_thr``; mmseg: ``classes``,
      ``background``, ``ignore_index``; both: ``encode_batch``).

    The mmdet key is stored in the COCO part (``part['key']``), the mmseg key
    in a sidecar ``<out_dir>/<image stem>.key.json`` with a digest of the PNG.

    Resume: in the **test loop**, an image whose export carries the same key
    is read back instead of refined again (an interrupted run resumes; the
    same checkpoint tested twice is refined once).  Any difference (another
    checkpoint's predictions, another image, refiner, SAM checkpoint content or
    setting, or an export without a key) recomputes the image and overwrites
    the stale export.  The **val loop never reuses** exports, whatever the
    key: each validation (every epoch during training, or ``runner.val()``)
    refines every image and rewrites the export, so a metric is never
    computed from another epoch's masks.

    Each loop logs how many images were refined, reused and found stale (and
    why), and for mmdet how many instances were refined and how many
    ``score_thr`` skipped, with a warning when it let no instance through;
    the numbers are also in :attr:`report` (summed over ranks).

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
            float rounding, so it is part of the export's key).  Images whose
            export is read back are not encoded.
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
        self._reset_counts()
        self.report: dict = {}
        self._writer = None
        self._dataset = None
        self._reuse = False
        self._refiner_digest: Optional[str] = None

    def _reset_counts(self) -> None:
        self.num_refined = 0  # images refined in this loop
        self.num_resumed = 0  # images read back from a matching export
        self.num_stale = 0  # exports found whose key did not match: recomputed
        self.stale_reasons = {field: 0 for field in _STALE_REASONS}
        self.num_instances_refined = 0  # mmdet: sent to SAM in this loop
        self.num_instances_reused = 0  # mmdet: over score_thr in images read back
        self.num_instances_skipped = 0  # mmdet: under score_thr, kept as predicted
        self.num_det_images = 0

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
        refiner = self.refiner(runner)
        self._writer = None
        self._dataset = getattr(runner, f'{mode}_loop').dataloader.dataset
        self._reset_counts()
        self._reuse = mode == 'test'  # val never reuses: see the class docstring
        if self.out_dir is not None and self._refiner_digest is None:
            fingerprint = getattr(refiner, 'fingerprint', None)
            self._refiner_digest = fingerprint() if callable(fingerprint) else repr(refiner)
        model = runner.model
        step_name = _STEP_OF_MODE[mode]
        step = getattr(model, step_name)

        @functools.wraps(step)
        def refining_step(data_batch):
            outputs = step(data_batch)
            inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
            batch_inputs = [inputs[i] if inputs is not None else None for i in range(len(outputs))]
            pending = []
            for data_sample, batch_input in zip(outputs, batch_inputs):
                reused, key = self._reuse_export(runner, data_sample, batch_input)
                if not reused:
                    pending.append((data_sample, batch_input, key))
            embeddings = [None] * len(pending)
            if self.encode_batch and pending:
                embeddings = self._encode_images([p[0] for p in pending], [p[1] for p in pending])
            for (data_sample, batch_input, key), embedding in zip(pending, embeddings):
                self._refine_and_export(runner, data_sample, batch_input, embedding, key)
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
        self._report(runner, mode)

    def _report(self, runner, mode: str) -> None:
        """Sum this loop's counts over the ranks, log them, keep them in
        :attr:`report`."""
        names = ('num_refined', 'num_resumed', 'num_stale', 'num_instances_refined',
                 'num_instances_reused', 'num_instances_skipped', 'num_det_images')
        reasons = tuple(self.stale_reasons)
        counts = torch.tensor([getattr(self, n) for n in names] +
                              [self.stale_reasons[r] for r in reasons], dtype=torch.int64)
        all_reduce(counts)  # a no-op in one process
        counts = counts.tolist()
        report = dict(zip(names, counts[:len(names)]))
        report['stale_reasons'] = {r: c for r, c in zip(reasons, counts[len(names):]) if c}
        report['mode'] = mode
        self.report = report
        prefix = f'SAMRefinerHook ({mode}):'
        line = (f'{prefix} {report["num_refined"] + report["num_resumed"]} images: '
                f'{report["num_refined"]} refined, {report["num_resumed"]} reused from a '
                'previous run')
        if self.out_dir is not None:
            line += f' (exports in {self._export_dir(runner)})'
            if report['num_stale']:
                why = ', '.join(f'{_REASON_TEXT.get(r, r + " differs")}: {c}'
                                for r, c in report['stale_reasons'].items())
                line += (f'; {report["num_stale"]} earlier exports were stale ({why}) and '
                         'were recomputed and overwritten')
            if not self._reuse:
                line += f'; the {mode} loop never reuses exports'
        runner.logger.info(line)
        if report['num_det_images']:
            passed = report['num_instances_refined'] + report['num_instances_reused']
            line = (f'{prefix} instances: {report["num_instances_refined"]} refined, '
                    f'{report["num_instances_skipped"]} skipped by score_thr={self.score_thr}')
            if report['num_instances_reused']:
                line += f', {report["num_instances_reused"]} read back refined'
            runner.logger.info(line)
            if passed == 0:
                if report['num_instances_skipped']:
                    runner.logger.warning(
                        f'{prefix} score_thr={self.score_thr} let no instance through: '
                        f'nothing was refined ({report["num_instances_skipped"]} instances '
                        'predicted, all scored under it)')
                else:
                    runner.logger.warning(f'{prefix} the model predicted no instance: '
                                          'nothing was refined')

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
        """Refine one prediction in place (or, in the test loop, read back its
        export made from the same inputs); the image's embedding is computed
        unless given."""
        reused, key = self._reuse_export(runner, data_sample, batch_input)
        if not reused:
            self._refine_and_export(runner, data_sample, batch_input, image_embedding, key)

    @staticmethod
    def _kind(data_sample) -> str:
        if 'pred_instances' in data_sample:
            return 'det'
        if 'pred_sem_seg' in data_sample:
            return 'seg'
        raise KeyError('SAMRefinerHook found neither pred_instances (mmdet) nor '
                       f'pred_sem_seg (mmseg) in the prediction; keys: {data_sample.keys()}')

    def _settings(self, kind: str) -> str:
        """The hook's settings the refined masks depend on (the key's part)."""
        if kind == 'det':
            own = f'score_thr={float(self.score_thr)!r}'
        else:
            classes = None if self.classes is None else [int(c) for c in self.classes]
            own = (f'classes={classes} background={int(self.background)} '
                   f'ignore_index={self.ignore_index}')
        return f'v{_KEY_VERSION} {kind} {own} encode_batch={bool(self.encode_batch)}'

    def export_key(self, data_sample, batch_input=None) -> dict:
        """What the refinement of ``data_sample``'s (unrefined) prediction is
        computed from: the dict stored with its export (see the class
        docstring)."""
        kind = self._kind(data_sample)
        if self._refiner_digest is None:
            fingerprint = getattr(self.refiner(), 'fingerprint', None)
            self._refiner_digest = fingerprint() if callable(fingerprint) else repr(self.refiner())
        return dict(prediction=prediction_digest(data_sample),
                    image=image_identity(data_sample, batch_input, self.channel_order),
                    refiner=self._refiner_digest, settings=self._settings(kind))

    def _count_stale(self, writer, name, key: dict) -> None:
        """An export of ``name`` exists but did not match ``key``: count why."""
        if not writer.has(name):
            return
        self.num_stale += 1
        stored = writer.stored_key(name)
        if not isinstance(stored, dict):
            self.stale_reasons['unkeyed'] += 1
            return
        if str(stored.get('settings', '')).split(' ')[0] != key['settings'].split(' ')[0]:
            self.stale_reasons['version'] += 1
            return
        for field in _KEY_FIELDS:
            if stored.get(field) != key[field]:
                self.stale_reasons[field] += 1
                return
        self.stale_reasons['damaged'] += 1

    def _reuse_export(self, runner, data_sample, batch_input):
        """``(reused, key)``: reads the sample's export back into it when its
        key matches (test loop only); ``key`` is None without ``out_dir``."""
        kind = self._kind(data_sample)
        writer = self._instance_writer(runner) if kind == 'det' else self._label_map_writer(runner)
        if kind == 'det':
            self.num_det_images += 1
        if writer is None:
            return False, None
        key = self.export_key(data_sample, batch_input)
        if not self._reuse:
            return False, key
        if kind == 'det':
            reused = self._read_instances(writer, data_sample, key)
        else:
            reused = self._read_label_map(writer, data_sample, key)
        if reused:
            self.num_resumed += 1
        else:
            self._count_stale(writer, self._export_name(data_sample), key)
        return reused, key

    @staticmethod
    def _export_name(data_sample):
        if 'pred_instances' in data_sample:
            return data_sample.metainfo.get('img_id', data_sample.metainfo.get('img_path'))
        return data_sample.metainfo.get('img_path')

    def _refine_and_export(self, runner, data_sample, batch_input, image_embedding,
                           key) -> None:
        if self._kind(data_sample) == 'det':
            self._refine_instances(runner, data_sample, batch_input, image_embedding, key)
        else:
            self._refine_label_map(runner, data_sample, batch_input, image_embedding, key)

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

    def _read_instances(self, writer, data_sample, key) -> bool:
        instances = data_sample.pred_instances
        if 'masks' not in instances:
            return False  # refining says why
        exported = writer.read(self._export_name(data_sample), key=key)
        if exported is None or len(exported['masks']) != len(instances):
            return False
        if self.keep_coarse:
            masks = instances.masks
            instances.coarse_masks = (masks if isinstance(masks, torch.Tensor) else
                                      torch.from_numpy(masks.to_ndarray())).bool().clone()
        instances.masks = torch.from_numpy(exported['masks']).to(instances.scores.device)
        passed = int((instances.scores >= self.score_thr).sum())
        self.num_instances_reused += passed
        self.num_instances_skipped += len(instances) - passed
        return True

    def _refine_instances(self, runner, data_sample, batch_input, image_embedding,
                          key=None) -> None:
        writer = self._instance_writer(runner)
        img_id = self._export_name(data_sample)
        instances = data_sample.pred_instances
        image, order = self._image_unless_encoded(data_sample, batch_input, image_embedding)
        refined = refine_det_sample(self.refiner(), data_sample, image, order, self.score_thr,
                                    self.keep_coarse, image_embedding)
        self.num_refined += 1
        self.num_instances_refined += refined
        self.num_instances_skipped += len(instances) - refined
        if writer is not None:
            img_path = data_sample.metainfo.get('img_path') or str(img_id)
            writer.write(img_id, osp.basename(img_path), instances.masks.cpu().numpy(),
                         instances.labels.cpu().numpy(), instances.scores.cpu().numpy(),
                         key=key)

    def _label_map_writer(self, runner) -> Optional[LabelMapWriter]:
        out_dir = self._export_dir(runner)
        if out_dir is not None and self._writer is None:
            self._writer = LabelMapWriter(out_dir)
        return self._writer

    def _read_label_map(self, writer, data_sample, key) -> bool:
        from mmengine.structures import PixelData
        img_path = data_sample.metainfo.get('img_path')
        if img_path is None:
            raise KeyError('exporting label maps needs img_path in the data samples')
        exported = writer.read(img_path, key=key)
        label_map = data_sample.pred_sem_seg.data
        if exported is None or exported.shape != tuple(label_map.shape[-2:]):
            return False
        if self.keep_coarse:
            data_sample.coarse_sem_seg = PixelData(data=label_map.clone())
        data_sample.pred_sem_seg = PixelData(
            data=torch.from_numpy(exported).to(label_map.device, label_map.dtype)[None])
        return True

    def _refine_label_map(self, runner, data_sample, batch_input, image_embedding,
                          key=None) -> None:
        writer = self._label_map_writer(runner)
        img_path = data_sample.metainfo.get('img_path')
        if writer is not None and img_path is None:
            raise KeyError('exporting label maps needs img_path in the data samples')
        image, order = self._image_unless_encoded(data_sample, batch_input, image_embedding)
        refine_seg_sample(self.refiner(), data_sample, image, order, self.classes,
                          self.background, self.ignore_index, self.keep_coarse, image_embedding)
        self.num_refined += 1
        if writer is not None:
            writer.write(img_path, data_sample.pred_sem_seg.data[0].cpu().numpy(), key=key)

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
