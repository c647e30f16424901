# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The kinds of prediction :class:`SAMRefinerHook` refines, one object each.

A :class:`PredictionKind` holds everything that depends on what a model
predicts: whether a sample has anything to refine, refining it, what of it
the export's key digests and which of the hook's settings the key names, the
name of its export, its writer, writing it and reading it back.
:class:`~mmsamrefiner.engine.prediction_refiner.PredictionRefiner` and
:class:`~mmsamrefiner.engine.pseudo_label_export.PseudoLabelExport` ask
:func:`prediction_kind` once per sample and never ask which kind they have.

* :class:`DetPredictions` (``'det'``): mmdet's ``pred_instances``, refined per
  instance (those scored under ``score_thr`` keep their masks), exported as
  COCO parts ``parts/<key>.json`` named after the image's ``img_id``, merged
  into ``instances.json`` at the end of the loop (leaving out instances under
  ``export_score_thr``); each annotation keeps the model's ``score`` and the
  refiner's signals (``refined_score``, ``refined_stability``,
  ``refined_coarse_iou``);
* :class:`SegPredictions` (``'seg'``): mmseg's ``pred_sem_seg``, refined
  through split-then-merge, exported as PNG label maps at the image's path
  under the dataset's image folder (:func:`label_map_key`), each with its
  class signals (``<key>.json``), gathered into ``class_signals.csv`` at
  the end of the loop.

A third kind is a subclass added to :data:`KINDS`.
"""
import os
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import barrier, is_main_process

from mmsamrefiner.mask_io.refined_masks import PseudoLabelCocoWriter, PseudoLabelMapWriter
from mmsamrefiner.utils.digest import update_array
from mmsamrefiner.utils.file_keys import file_key
from mmsamrefiner.utils.masks import as_bool_tensor

from .loop_report import LoopCounts
from .sample_refiner import SIGNALS, refine_det_sample, refine_seg_sample


class PredictionKind:
    """One kind of prediction held by a data sample, and what depends on it.

    ``options`` below is the loop's
    :class:`~mmsamrefiner.engine.prediction_refiner.RefineOptions`, ``counts``
    its :class:`~mmsamrefiner.engine.loop_report.LoopCounts`.
    """

    #: the kind's word in export keys (``settings``)
    name = ''
    #: the data-sample field that holds the prediction
    field = ''
    #: the framework whose models predict it (for messages)
    framework = ''

    def holds(self, data_sample) -> bool:
        """Whether ``data_sample`` holds a prediction of this kind."""
        return self.field in data_sample

    # -- refining ----------------------------------------------------------------
    def count_seen(self, counts: LoopCounts) -> None:
        """Count a sample of this kind, refined or read back."""

    def has_work(self, data_sample, options) -> bool:
        """Whether SAM has anything to refine in the sample (else its image
        is neither read nor encoded, and the image is counted as having
        nothing to refine)."""
        raise NotImplementedError

    def refine(self, refiner, data_sample, image: Optional[np.ndarray], channel_order: str,
               options, image_embedding, counts: LoopCounts) -> None:
        """Refine the sample's prediction in place (``image`` None: with
        ``image_embedding``, or when there is nothing to refine)."""
        raise NotImplementedError

    # -- the export's key ----------------------------------------------------------
    def update_digest(self, digest, data_sample) -> None:
        """Add the sample's unrefined prediction to ``digest``."""
        raise NotImplementedError

    def key_settings(self, options) -> str:
        """The hook's settings the refined prediction depends on, as text."""
        raise NotImplementedError

    # -- naming ----------------------------------------------------------------
    def check_nameable(self, data_sample) -> None:
        """Raise ``ValueError`` if the sample's export cannot be named."""
        raise NotImplementedError

    def key(self, data_sample, img_dir: Optional[str]) -> str:
        """The key naming the sample's export and record (never a path)."""
        raise NotImplementedError

    def identity(self, data_sample) -> tuple:
        """What tells two images of a loop apart; two identities that reach
        one key are a collision."""
        raise NotImplementedError

    def collision_message(self, where: str, first: tuple, second: tuple,
                          img_dir: Optional[str]) -> str:
        """Why images ``first`` and ``second`` (identities) would both be
        exported as the file ``where``, and what to do."""
        raise NotImplementedError

    # -- writing and reading back --------------------------------------------------
    def make_writer(self, out_dir: str, dataset, export_score_thr: Optional[float]):
        """The loop's writer (:mod:`mmsamrefiner.mask_io.refined_masks`)."""
        raise NotImplementedError

    def exported(self, data_sample) -> dict:
        """What :meth:`write` writes of the sample's (refined) prediction,
        taken from it now (tensors as they are, on their device): the
        export's writer thread writes it while the loop goes on."""
        raise NotImplementedError

    def write(self, writer, key: str, exported: dict) -> Tuple[dict, int]:
        """Write :meth:`exported` (copied to the host, encoded); ``(outputs,
        number of masks)``."""
        raise NotImplementedError

    def read_back(self, writer, key: str, data_sample, options, counts: LoopCounts) -> bool:
        """Put the sample's export, if it fits the prediction, in place of the
        prediction (the unrefined one kept with ``keep_coarse``); whether it
        did."""
        raise NotImplementedError

    def finish(self, writer, logger) -> None:
        """At the loop's end, once every rank has written its images."""


class DetPredictions(PredictionKind):
    """mmdet: ``pred_instances`` with ``masks`` (N, H, W), ``scores`` (N,) and
    ``labels`` (N,), in the original image's frame."""

    name = 'det'
    field = 'pred_instances'
    framework = 'mmdet'

    def count_seen(self, counts: LoopCounts) -> None:
        counts.num_det_images += 1

    def has_work(self, data_sample, options) -> bool:
        """Any instance scored at least ``score_thr`` (a prediction without
        scores: True, and refining it says what is missing)."""
        scores = data_sample.pred_instances.get('scores')
        return scores is None or bool((scores >= options.score_thr).any())

    def refine(self, refiner, data_sample, image, channel_order, options, image_embedding,
               counts: LoopCounts) -> None:
        refined = refine_det_sample(refiner, data_sample, image, channel_order,
                                    options.score_thr, options.keep_coarse, image_embedding)
        counts.num_instances_refined += refined
        counts.num_instances_skipped += len(data_sample.pred_instances) - refined

    def update_digest(self, digest, data_sample) -> None:
        """Masks ((N, H, W), as bool, bit-packed), scores (float32) and labels
        (int64), N = 0 included; shapes too."""
        instances = data_sample.pred_instances
        if 'masks' in instances:
            masks = as_bool_tensor(instances.masks).cpu().numpy()
            digest.update(f'masks{masks.shape}'.encode('ascii'))
            # (N, H*W) spelt out: reshape(N, -1) is undefined for N = 0
            flat = masks.reshape(masks.shape[0], int(np.prod(masks.shape[1:])))
            update_array(digest, np.packbits(flat, axis=1), 'bits')
        for name in ('scores', 'labels'):
            if name in instances:
                values = getattr(instances, name)
                values = values.cpu().numpy() if isinstance(values, torch.Tensor) else values
                update_array(digest, np.asarray(
                    values, np.float32 if name == 'scores' else np.int64), name)

    def key_settings(self, options) -> str:
        return f'score_thr={float(options.score_thr)!r}'

    @staticmethod
    def export_name(data_sample):
        """Its ``img_id``, else its ``img_path``."""
        return data_sample.metainfo.get('img_id', data_sample.metainfo.get('img_path'))

    def check_nameable(self, data_sample) -> None:
        meta = data_sample.metainfo
        if meta.get('img_id') is None and not meta.get('img_path'):
            raise ValueError('exporting COCO pseudo-labels needs img_id (or img_path) in the '
                             'data samples: keep it in the meta_keys of PackDetInputs')

    def key(self, data_sample, img_dir: Optional[str]) -> str:
        """:func:`~mmsamrefiner.utils.file_keys.file_key` of its ``img_id``
        (a part ``parts/<key>.json``)."""
        return file_key(self.export_name(data_sample))

    def identity(self, data_sample) -> tuple:
        """``(img_id, img_path)``."""
        meta = data_sample.metainfo
        return meta.get('img_id'), meta.get('img_path')

    def collision_message(self, where, first, second, img_dir) -> str:
        return (f'images img_id={first[0]!r} ({first[1]}) and img_id={second[0]!r} '
                f'({second[1]}) would both be exported as {where}: their ids give one file '
                'name; give each image of the dataset an id of its own')

    def make_writer(self, out_dir, dataset, export_score_thr) -> PseudoLabelCocoWriter:
        """A COCO writer whose categories are the dataset's classes (mmdet's
        ``CocoDataset`` maps labels to its ``cat_ids``; others get 1..K)."""
        classes = getattr(dataset, 'metainfo', {}).get('classes')
        if classes is None:
            raise ValueError('exporting COCO pseudo-labels needs the class names: the '
                             f'{type(dataset).__name__} of this loop has no '
                             'metainfo["classes"]')
        return PseudoLabelCocoWriter(out_dir, classes, getattr(dataset, 'cat_ids', None),
                                     score_thr=export_score_thr)

    def exported(self, data_sample) -> dict:
        """Its (N, H, W) masks with (N,) labels and scores, its ``img_id``
        and file name, and the refiner's (N,) signals (None when not
        refined)."""
        instances = data_sample.pred_instances
        img_id = self.export_name(data_sample)
        img_path = data_sample.metainfo.get('img_path') or str(img_id)
        signals = None
        if 'refined_scores' in instances:
            signals = {source: getattr(instances, name) for source, name in SIGNALS.items()}
        return dict(img_id=img_id, file_name=osp.basename(img_path), masks=instances.masks,
                    labels=instances.labels, scores=instances.scores, signals=signals)

    def write(self, writer, key, exported) -> Tuple[dict, int]:
        """Its masks with labels and scores (N = 0: the image entry alone),
        and the refiner's signals when it refined them."""
        masks = as_bool_tensor(exported['masks']).cpu().numpy()
        signals = exported['signals']
        if signals is not None:
            signals = {name: value.cpu().numpy() for name, value in signals.items()}
        outputs = writer.write(key, exported['img_id'], exported['file_name'], masks,
                               exported['labels'].cpu().numpy(),
                               exported['scores'].cpu().numpy(), signals)
        return outputs, len(masks)

    def read_back(self, writer, key, data_sample, options, counts) -> bool:
        """The exported masks, when there are as many as predicted instances;
        instances over ``score_thr`` count as read back refined, the others
        as skipped."""
        instances = data_sample.pred_instances
        if 'masks' not in instances:
            return False  # refining says why
        exported = writer.read(key)
        if exported is None or len(exported['masks']) != len(instances):
            return False
        if options.keep_coarse:
            instances.coarse_masks = as_bool_tensor(instances.masks).clone()
        instances.masks = torch.from_numpy(exported['masks']).to(instances.scores.device)
        passed = int((instances.scores >= options.score_thr).sum())
        counts.num_instances_reused += passed
        counts.num_instances_skipped += len(instances) - passed
        return True

    def finish(self, writer, logger) -> None:
        """The main process merges the parts into ``instances.json`` once
        every rank has written its own, leaving out instances under
        ``export_score_thr``."""
        barrier()
        if is_main_process():
            out_file = writer.merge()
            left_out = ('' if writer.score_thr is None else
                        f' ({writer.num_left_out} instances under export_score_thr='
                        f'{writer.score_thr} left out)')
            logger.info(f'SAMRefinerHook: wrote {out_file}{left_out}')


def relative_parts(img_path: str, img_dir: Optional[str]) -> Optional[List[str]]:
    """The components of ``img_path`` relative to the folder ``img_dir``
    (``['a', 'x.jpg']``), or None when it is not inside that folder (or
    ``img_dir`` is empty)."""
    if not img_dir:
        return None
    try:
        relative = osp.relpath(osp.abspath(img_path), osp.abspath(img_dir))
    except ValueError:  # another drive (Windows)
        return None
    parts = relative.split(os.sep)
    if relative == os.curdir or parts[0] == os.pardir or osp.isabs(relative):
        return None
    return parts


def label_map_key(img_path: str, img_dir: Optional[str]) -> str:
    """The key of an mmseg image's label map (its path under ``out_dir``
    without ``.png``): the image's path relative to the dataset's image
    folder ``img_dir`` without its extension, mmseg's own layout
    (``<img_dir>/a/x.jpg`` -> ``a/x``), else the stem of its file name; each
    component goes through :func:`~mmsamrefiner.utils.file_keys.file_key`,
    so the key is never absolute and never holds ``..``."""
    parts = relative_parts(img_path, img_dir) or [osp.basename(img_path)]
    parts[-1] = osp.splitext(parts[-1])[0]
    return '/'.join(file_key(part) for part in parts)


class SegPredictions(PredictionKind):
    """mmseg: ``pred_sem_seg``, a (1, H, W) integer label map in the original
    image's frame."""

    name = 'seg'
    field = 'pred_sem_seg'
    framework = 'mmseg'

    def has_work(self, data_sample, options) -> bool:
        """Whether the map holds a class to refine: one of ``classes``, or
        (without them) any label but ``background`` and ``ignore_index``."""
        present = {int(v) for v in torch.unique(data_sample.pred_sem_seg.data).tolist()}
        if options.classes is not None:
            return bool(present & {int(c) for c in options.classes})
        skip = {options.background} | (
            {options.ignore_index} if options.ignore_index is not None else set())
        return bool(present - skip)

    def refine(self, refiner, data_sample, image, channel_order, options, image_embedding,
               counts: LoopCounts) -> None:
        refine_seg_sample(refiner, data_sample, image, channel_order, options.classes,
                          options.background, options.ignore_index, options.keep_coarse,
                          image_embedding)

    def update_digest(self, digest, data_sample) -> None:
        """The label map (int64), shape included."""
        update_array(digest, data_sample.pred_sem_seg.data.cpu().numpy().astype(np.int64),
                     'sem_seg')

    def key_settings(self, options) -> str:
        classes = None if options.classes is None else [int(c) for c in options.classes]
        return (f'classes={classes} background={int(options.background)} '
                f'ignore_index={options.ignore_index}')

    def check_nameable(self, data_sample) -> None:
        if not data_sample.metainfo.get('img_path'):
            raise ValueError('exporting label maps needs img_path in the data samples: keep '
                             'it in the meta_keys of PackSegInputs')

    def key(self, data_sample, img_dir: Optional[str]) -> str:
        """:func:`label_map_key` of its ``img_path`` under ``img_dir`` (a
        label map ``<key>.png``)."""
        return label_map_key(data_sample.metainfo.get('img_path'), img_dir)

    def identity(self, data_sample) -> tuple:
        """``(None, absolute img_path)``."""
        return None, osp.normpath(osp.abspath(data_sample.metainfo['img_path']))

    def collision_message(self, where, first, second, img_dir) -> str:
        inside = [relative_parts(path, img_dir) is not None for path in (first[1], second[1])]
        why = ('their paths under the image folder differ only in the extension; rename one'
               if all(inside) else
               "not both are in the dataset's image folder (data_prefix['img_path']: "
               f'{img_dir}), whose sub-folders would keep them apart, and an image outside '
               'it is named by its file stem; rename one or put them under that folder')
        return f'images {first[1]} and {second[1]} would both be exported as {where}: {why}'

    def make_writer(self, out_dir, dataset, export_score_thr) -> PseudoLabelMapWriter:
        return PseudoLabelMapWriter(out_dir)

    def exported(self, data_sample) -> dict:
        """Its (H, W) label map and, when refined, its class signals."""
        return dict(label_map=data_sample.pred_sem_seg.data[0],
                    classes=data_sample.get('refined_classes'))

    def write(self, writer, key, exported) -> Tuple[dict, int]:
        """Its label map (one of background or ``ignore_index`` only
        included) and, when refined, its class signals (``<key>.json``)."""
        return writer.write(key, exported['label_map'].cpu().numpy(), exported['classes']), 1

    def read_back(self, writer, key, data_sample, options, counts) -> bool:
        """The exported label map, when it has the prediction's size."""
        from mmengine.structures import PixelData
        label_map = data_sample.pred_sem_seg.data
        exported = writer.read(key)
        if exported is None or exported['label_map'].shape != tuple(label_map.shape[-2:]):
            return False
        if options.keep_coarse:
            data_sample.coarse_sem_seg = PixelData(data=label_map.clone())
        data_sample.pred_sem_seg = PixelData(data=torch.from_numpy(exported['label_map']).to(
            label_map.device, label_map.dtype)[None])
        return True

    def finish(self, writer, logger) -> None:
        """The main process gathers the class signals of every exported map
        into ``class_signals.csv`` once every rank has written its own
        (none when no map has them: predictions read back, or refined by a
        refiner without signals)."""
        barrier()
        if is_main_process():
            out_file = writer.merge()
            if out_file is not None:
                logger.info(f'SAMRefinerHook: wrote {out_file}')


#: Every kind, in the order :func:`prediction_kind` tries them.
KINDS = (DetPredictions(), SegPredictions())


def prediction_kind(data_sample) -> PredictionKind:
    """The kind of ``data_sample``'s prediction (the first of :data:`KINDS`
    that holds it).

    Raises:
        ValueError: it holds none of them.
    """
    for kind in KINDS:
        if kind.holds(data_sample):
            return kind
    fields = ', '.join(f'{kind.field} ({kind.framework})' for kind in KINDS)
    raise ValueError(f'SAMRefinerHook found none of {fields} in the prediction; keys: '
                     f'{data_sample.keys()}')
