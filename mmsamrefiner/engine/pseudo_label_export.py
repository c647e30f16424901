# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Exporting refined pseudo-labels, and reading them back on a re-run (resume).

One :class:`PseudoLabelExport` serves one val/test loop of
:class:`SAMRefinerHook` with ``out_dir``.  As the loop goes, each image's
refined masks are written atomically by the writers of
:mod:`mmsamrefiner.mask_io.refined_masks` (mmdet: a COCO part with RLE masks,
merged into ``<out_dir>/instances.json`` at the end of the loop; mmseg: one PNG
label map per image), and then the image's record
(:class:`~mmsamrefiner.mask_io.refined_masks.RecordBook`, the resume scheme
``tools/refine.py`` uses too).  An image with no prediction (mmdet: zero
instances; mmseg: a map of background or ``ignore_index`` only) is exported
too: its COCO image entry without annotations, its PNG.

Names (:func:`sample_key`) are never paths: mmdet names a part after the
image's ``img_id`` through :func:`~mmsamrefiner.utils.file_keys.file_key`
(``parts/<key>.json``); mmseg keeps the layout of the dataset's image folder
(``data_prefix['img_path']``): ``<folder>/a/x.jpg`` gives ``<out_dir>/a/x.png``,
each component through ``file_key`` (an image outside the folder: its file
stem).  Two images of one loop that reach one name (mmdet ids ``1`` and
``"1"``, mmseg images of one stem outside the folder) are refused before the
second is written (:meth:`PseudoLabelExport.claim`).

What the masks were computed from, its key (:func:`export_key`), has four
fields:

* ``prediction``: :func:`prediction_digest`, the model's unrefined prediction
  (mmdet: masks, scores and labels; mmseg: the label map);
* ``image``: :func:`image_identity`, the image file's absolute path, size and
  mtime (or, for an image rebuilt from the batch input, a digest of its
  pixels);
* ``refiner``: :meth:`SAMRefiner.fingerprint` (its settings and the *content*
  of SAM's weights and of an IoU adapter);
* ``settings``: :func:`key_settings`, the key's version and the hook's own
  settings (mmdet: ``score_thr``; mmseg: ``classes``, ``background``,
  ``ignore_index``; both: ``encode_batch``, images per encoder call, as
  batched encoding equals one-by-one encoding only up to float rounding).

The record's ``input`` digest covers ``prediction`` and ``image``, its
``settings`` digest ``refiner`` and ``settings``, its ``outputs`` the digest
of each file written; the fields themselves are kept in the record
(``fields``) to say why an export is stale.

With ``reuse`` (the test loop), an image whose record matches is read back
instead of refined again (an interrupted run resumes; the same checkpoint
tested twice is refined once); any difference recomputes the image and
overwrites the export, and is counted with its reason
(:data:`~mmsamrefiner.engine.loop_report.STALE_REASONS`).  Without ``reuse``
(the val loop) every image is refined and its export rewritten, so a metric
is never computed from another epoch's masks.

``export_score_thr`` (mmdet) leaves instances scored under it out of
``instances.json`` when the parts are merged at the end of each loop.  The
parts keep every instance, so it is not part of the key: another threshold
rewrites ``instances.json`` at the loop's end without refining anything
again, and an image read back gives the evaluator the same masks as when it
was refined.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import barrier, is_main_process

from mmsamrefiner.mask_io.refined_masks import PseudoLabelCocoWriter, PseudoLabelMapWriter
from mmsamrefiner.utils.digest import digest_json, file_stamp, hasher, update_array
from mmsamrefiner.utils.file_keys import file_key, find_collision
from mmsamrefiner.utils.masks import as_bool_tensor

from .loop_report import LoopCounts
from .sample_refiner import sample_kind

#: What an export's key names, in the order stale exports are explained.
KEY_FIELDS = ('prediction', 'image', 'refiner', 'settings')
#: Bumped when the key's format or the refinement it describes changes
#: (2: digests of :mod:`mmsamrefiner.utils.digest`; 3: records of
#: :class:`~mmsamrefiner.mask_io.refined_masks.RecordBook`); the first word of
#: ``settings``.
KEY_VERSION = 3


def prediction_digest(data_sample) -> str:
    """Digest of the (unrefined) prediction of an mmdet or mmseg data sample.

    mmdet: ``pred_instances`` masks ((N, H, W), as bool, bit-packed), scores
    (float32) and labels (int64), N = 0 included; mmseg: the ``pred_sem_seg``
    label map (int64).  Shapes are included.
    """
    digest = hasher()
    if 'pred_instances' in data_sample:
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
    elif 'pred_sem_seg' in data_sample:
        update_array(digest, data_sample.pred_sem_seg.data.cpu().numpy().astype(np.int64),
                     'sem_seg')
    else:
        raise KeyError('neither pred_instances (mmdet) nor pred_sem_seg (mmseg) in the '
                       f'prediction; keys: {data_sample.keys()}')
    return digest.hexdigest()


def image_identity(data_sample, batch_input: Optional[torch.Tensor] = None,
                   channel_order: str = 'bgr') -> str:
    """Names the image :func:`sample_image` refines against, cheaply.

    A file at ``img_path``: its absolute path, size and modification time
    (ns) (``file:...``, :func:`~mmsamrefiner.utils.digest.file_stamp`);
    otherwise a digest of the batch input's pixels with ``img_shape``,
    ``ori_shape`` and ``channel_order`` (``pixels:...``), which is what the
    image is rebuilt from.
    """
    img_path = data_sample.metainfo.get('img_path')
    if isinstance(img_path, (str, os.PathLike)) and img_path and osp.isfile(img_path):
        return 'file:' + file_stamp(img_path, whole_path=True)
    if batch_input is None:
        return f'unreadable:{img_path}'
    digest = hasher()
    update_array(digest, batch_input.cpu().numpy(), 'input')
    shapes = (data_sample.metainfo.get('img_shape'), data_sample.metainfo.get('ori_shape'))
    digest.update(f'{shapes}{channel_order}'.encode('ascii'))
    return f'pixels:{digest.hexdigest()}'


def key_settings(kind: str, options) -> str:
    """The key's ``settings``: its version, the prediction's kind and the
    hook's settings the refined masks depend on (``options``: a
    :class:`~mmsamrefiner.engine.prediction_refiner.RefineOptions`)."""
    if kind == 'det':
        own = f'score_thr={float(options.score_thr)!r}'
    else:
        classes = None if options.classes is None else [int(c) for c in options.classes]
        own = (f'classes={classes} background={int(options.background)} '
               f'ignore_index={options.ignore_index}')
    encode_batch = 'batch' if options.encode_batch is None else int(options.encode_batch)
    return f'v{KEY_VERSION} {kind} {own} encode_batch={encode_batch}'


def export_key(data_sample, batch_input, refiner_digest: str, options) -> dict:
    """What the refinement of ``data_sample``'s (unrefined) prediction is
    computed from: the dict stored with its export (see the module
    docstring)."""
    return dict(prediction=prediction_digest(data_sample),
                image=image_identity(data_sample, batch_input, options.channel_order),
                refiner=refiner_digest, settings=key_settings(sample_kind(data_sample), options))


def export_name(data_sample):
    """What the sample's export is named after: mmdet its ``img_id`` (else
    ``img_path``), mmseg its ``img_path`` (None when it has none)."""
    if 'pred_instances' in data_sample:
        return data_sample.metainfo.get('img_id', data_sample.metainfo.get('img_path'))
    return data_sample.metainfo.get('img_path')


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


def sample_key(data_sample, img_dir: Optional[str] = None) -> str:
    """The key naming a sample's export and record: mmdet ``file_key`` of
    its ``img_id`` (a part ``parts/<key>.json``), mmseg :func:`label_map_key`
    of its ``img_path`` under ``img_dir`` (a label map ``<key>.png``)."""
    if sample_kind(data_sample) == 'det':
        return file_key(export_name(data_sample))
    return label_map_key(export_name(data_sample), img_dir)


def sample_identity(data_sample) -> tuple:
    """What tells two images of a loop apart: mmdet ``(img_id, img_path)``,
    mmseg ``(None, absolute img_path)``; two identities that reach one key
    are a collision."""
    meta = data_sample.metainfo
    if sample_kind(data_sample) == 'det':
        return meta.get('img_id'), meta.get('img_path')
    return None, osp.normpath(osp.abspath(meta['img_path']))


def record_digests(key: dict) -> tuple:
    """``(input, settings)`` digests of an export key (see the module docstring)."""
    return (digest_json([key['prediction'], key['image']]),
            digest_json([key['refiner'], key['settings']]))


def dataset_inputs(dataset) -> List[Tuple[str, str]]:
    """``(what, path)`` of the files and folders a dataset reads: its
    ``ann_file`` and every folder of its ``data_prefix`` (the parts of a
    ``ConcatDataset`` too)."""
    inputs = []
    for part in getattr(dataset, 'datasets', None) or [dataset]:
        if part is not dataset:
            inputs += dataset_inputs(part)
            continue
        ann_file = getattr(part, 'ann_file', None)
        if isinstance(ann_file, str) and ann_file:
            inputs.append(('ann_file', ann_file))
        prefix = getattr(part, 'data_prefix', None)
        for name, folder in (prefix.items() if isinstance(prefix, dict) else ()):
            if isinstance(folder, str) and folder:
                inputs.append((f'data_prefix.{name}', folder))
    return inputs


def check_apart_from_inputs(out_dir: str, dataset) -> None:
    """Refuse an export folder that is, lies inside or contains a file or
    folder the loop's dataset reads (its images, label maps, annotation file):
    the export would overwrite them or be read back as input."""
    out = osp.realpath(out_dir)
    for what, path in dataset_inputs(dataset):
        real = osp.realpath(path)
        if out == real or out.startswith(real.rstrip(os.sep) + os.sep):
            relation = 'is' if out == real else 'is inside'
        elif real.startswith(out.rstrip(os.sep) + os.sep):
            relation = 'contains'
        else:
            continue
        raise ValueError(f'SAMRefinerHook: out_dir {out_dir} {relation} the dataset\'s {what} '
                         f'{path}; the export must not be written where the loop reads its '
                         'input: give out_dir another folder')


class PseudoLabelExport:
    """One loop's refined pseudo-labels under ``out_dir``, with resume.

    Args:
        out_dir: the export directory.
        dataset: the loop's dataset (mmdet: its ``metainfo['classes']`` and
            ``cat_ids`` name the COCO categories; mmseg: its
            ``data_prefix['img_path']`` is the image folder whose layout the
            label maps keep, :func:`label_map_key`).
        refiner_digest: :meth:`SAMRefiner.fingerprint` (the key's ``refiner``).
        options: the :class:`~mmsamrefiner.engine.prediction_refiner.RefineOptions`
            (the key's ``settings``; ``keep_coarse`` and ``score_thr`` also
            apply to what is read back).
        counts: the loop's counts.
        reuse: read back exports whose key matches (the test loop).
        export_score_thr: mmdet: instances scored under it are left out of
            ``instances.json`` (None: all are written).
    """

    def __init__(self, out_dir: str, dataset, refiner_digest: str, options,
                 counts: LoopCounts, reuse: bool,
                 export_score_thr: Optional[float] = None) -> None:
        self.out_dir = out_dir
        self.export_score_thr = export_score_thr
        self.dataset = dataset
        self.refiner_digest = refiner_digest
        self.options = options
        self.counts = counts
        self.reuse = reuse
        self.writer = None  # made for the loop's first sample
        prefix = getattr(dataset, 'data_prefix', None)
        self.img_dir = prefix.get('img_path') if isinstance(prefix, dict) else None
        self.claimed: Dict[str, tuple] = {}  # key -> identity of the image that has it
        check_apart_from_inputs(out_dir, dataset)

    def _writer(self, kind: str):
        if self.writer is None:
            if kind == 'det':
                classes = getattr(self.dataset, 'metainfo', {}).get('classes')
                if classes is None:
                    raise ValueError('exporting COCO pseudo-labels needs the class names: the '
                                     f'{type(self.dataset).__name__} of this loop has no '
                                     'metainfo["classes"]')
                # mmdet's CocoDataset maps labels to COCO category ids; others get 1..K
                self.writer = PseudoLabelCocoWriter(self.out_dir, classes,
                                                    getattr(self.dataset, 'cat_ids', None))
            else:
                self.writer = PseudoLabelMapWriter(self.out_dir)
        return self.writer

    def key(self, data_sample, batch_input=None) -> dict:
        return export_key(data_sample, batch_input, self.refiner_digest, self.options)

    def read_back(self, data_sample, batch_input=None) -> Tuple[bool, dict]:
        """``(reused, key)``: with ``reuse``, reads the sample's export back into
        it when its record matches (counted as resumed, or as stale with why)."""
        kind = sample_kind(data_sample)
        name = self.claim(data_sample)
        writer = self._writer(kind)
        key = self.key(data_sample, batch_input)
        if not self.reuse:
            return False, key
        record, _ = writer.records.check(name, *record_digests(key))
        reused = False
        if record is not None:
            exported = writer.read(name)
            if kind == 'det':
                reused = self._apply_instances(data_sample, exported)
            else:
                reused = self._apply_label_map(data_sample, exported)
        if reused:
            self.counts.num_resumed += 1
        else:
            self._count_stale(writer, name, key)
        return reused, key

    def _count_stale(self, writer, name: str, key: dict) -> None:
        """The export of ``name`` was not reused: count it as stale, with its
        reason, unless the image had no export."""
        record = writer.records.read(name)
        if record is None and not writer.has(name):
            return  # a new image
        counts = self.counts
        counts.num_stale += 1
        if record is None:
            counts.stale_reasons['unrecorded'] += 1
            return
        fields = record.get('fields')
        fields = fields if isinstance(fields, dict) else {}
        if str(fields.get('settings', '')).split(' ')[0] != key['settings'].split(' ')[0]:
            counts.stale_reasons['version'] += 1
            return
        for field in KEY_FIELDS:
            if fields.get(field) != key[field]:
                counts.stale_reasons[field] += 1
                return
        counts.stale_reasons['damaged'] += 1  # the key matches, the files do not

    def _apply_instances(self, data_sample, exported) -> bool:
        instances = data_sample.pred_instances
        if 'masks' not in instances:
            return False  # refining says why
        if exported is None or len(exported['masks']) != len(instances):
            return False
        if self.options.keep_coarse:
            instances.coarse_masks = as_bool_tensor(instances.masks).clone()
        instances.masks = torch.from_numpy(exported['masks']).to(instances.scores.device)
        passed = int((instances.scores >= self.options.score_thr).sum())
        self.counts.num_instances_reused += passed
        self.counts.num_instances_skipped += len(instances) - passed
        return True

    def _apply_label_map(self, data_sample, exported) -> bool:
        from mmengine.structures import PixelData
        label_map = data_sample.pred_sem_seg.data
        if exported is None or exported.shape != tuple(label_map.shape[-2:]):
            return False
        if self.options.keep_coarse:
            data_sample.coarse_sem_seg = PixelData(data=label_map.clone())
        data_sample.pred_sem_seg = PixelData(
            data=torch.from_numpy(exported).to(label_map.device, label_map.dtype)[None])
        return True

    def check(self, data_sample) -> None:
        """Raise before refining a sample whose export cannot be named."""
        meta = data_sample.metainfo
        if sample_kind(data_sample) == 'seg':
            if not meta.get('img_path'):
                raise KeyError('exporting label maps needs img_path in the data samples: '
                               'keep it in the meta_keys of PackSegInputs')
        elif meta.get('img_id') is None and not meta.get('img_path'):
            raise KeyError('exporting COCO pseudo-labels needs img_id (or img_path) in the data '
                           'samples: keep it in the meta_keys of PackDetInputs')

    def claim(self, data_sample) -> str:
        """The sample's key (:func:`sample_key`), once it is known that no
        other image of this loop has it.

        Raises:
            ValueError: another image of this loop reached the same key (its
                export would be overwritten); nothing of this one is written.
        """
        self.check(data_sample)
        key = sample_key(data_sample, self.img_dir)
        identity = sample_identity(data_sample)
        first = self.claimed.setdefault(key, identity)
        if find_collision([(key, first), (key, identity)]) is not None:
            raise ValueError(self._collision_message(sample_kind(data_sample), key, first,
                                                     identity))
        return key

    def _collision_message(self, kind: str, key: str, first: tuple, second: tuple) -> str:
        writer = PseudoLabelCocoWriter if kind == 'det' else PseudoLabelMapWriter
        where = osp.join(self.out_dir, writer.relpath(key))
        if kind == 'seg':
            inside = [relative_parts(path, self.img_dir) is not None
                      for path in (first[1], second[1])]
            why = ('their paths under the image folder differ only in the extension; rename one'
                   if all(inside) else
                   "not both are in the dataset's image folder (data_prefix['img_path']: "
                   f'{self.img_dir}), whose sub-folders would keep them apart, and an image '
                   'outside it is named by its file stem; rename one or put them under that '
                   'folder')
            return f'images {first[1]} and {second[1]} would both be exported as {where}: {why}'
        return (f'images img_id={first[0]!r} ({first[1]}) and img_id={second[0]!r} '
                f'({second[1]}) would both be exported as {where}: their ids give one file '
                'name; give each image of the dataset an id of its own')

    def write(self, data_sample, key: dict) -> None:
        """Write the sample's refined prediction (N = 0 instances or an empty
        label map included), then its record."""
        kind = sample_kind(data_sample)
        name = self.claim(data_sample)
        writer = self._writer(kind)
        if kind == 'det':
            outputs, num_masks = self._write_instances(writer, name, data_sample)
        else:
            outputs = writer.write(name, data_sample.pred_sem_seg.data[0].cpu().numpy())
            num_masks = 1
        input_digest, settings = record_digests(key)
        writer.records.write(name, status='refined', input=input_digest, settings=settings,
                             outputs=outputs, fields=key,
                             img_path=data_sample.metainfo.get('img_path'),
                             num_masks=num_masks)

    @staticmethod
    def _write_instances(writer, name: str, data_sample) -> Tuple[dict, int]:
        """Write an mmdet sample's part: its (N, H, W) masks with labels and
        scores; ``(outputs, N)``."""
        instances = data_sample.pred_instances
        img_id = export_name(data_sample)
        img_path = data_sample.metainfo.get('img_path') or str(img_id)
        masks = as_bool_tensor(instances.masks).cpu().numpy()
        outputs = writer.write(name, img_id, osp.basename(img_path), masks,
                               instances.labels.cpu().numpy(), instances.scores.cpu().numpy())
        return outputs, len(masks)

    def finish(self, logger) -> None:
        """At the loop's end: mmdet parts are merged into ``instances.json``
        (by the main process, once every rank has written its parts), leaving
        out instances under ``export_score_thr``."""
        if isinstance(self.writer, PseudoLabelCocoWriter):
            barrier()
            if is_main_process():
                out_file = self.writer.merge(score_thr=self.export_score_thr)
                left_out = ('' if self.export_score_thr is None else
                            f' ({self.writer.num_left_out} instances under export_score_thr='
                            f'{self.export_score_thr} left out)')
                logger.info(f'SAMRefinerHook: wrote {out_file}{left_out}')
