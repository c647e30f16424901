# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Exporting refined pseudo-labels, and reading them back on a re-run (resume).

One :class:`PseudoLabelExport` serves one val/test loop of
:class:`SAMRefinerHook` with ``out_dir``.  As the loop goes, each image's
refined masks are written atomically by the writer of its kind of prediction
(:mod:`mmsamrefiner.engine.prediction_kinds`; mmdet: a COCO part with RLE
masks, merged into ``<out_dir>/instances.json`` at the end of the loop; mmseg:
one PNG label map per image), and then the image's record
(:class:`~mmsamrefiner.mask_io.records.RecordBook`, the resume scheme
``tools/refine.py`` uses too).  The hook's export writes behind the loop, in
a writer thread (``write_behind``): copying the masks to the host, encoding
and writing them never stalls the loop; the loop's end waits for it before
the parts are merged.  An image with no prediction (mmdet: zero
instances; mmseg: a map of background or ``ignore_index`` only) is exported
too: its COCO image entry without annotations, its PNG.

Names (the kind's ``key``) are never paths: mmdet names a part after the
image's ``img_id`` through :func:`~mmsamrefiner.utils.file_keys.file_key`
(``parts/<key>.json``); mmseg keeps the layout of the dataset's image folder
(``data_prefix['img_path']``): ``<folder>/a/x.jpg`` gives
``<out_dir>/a/x.png``, each component through ``file_key`` (an image outside
the folder: its file stem,
:func:`~mmsamrefiner.engine.prediction_kinds.label_map_key`).  Two images of
one loop that reach one name (mmdet ids ``1`` and ``"1"``, mmseg images of one
stem outside the folder) are refused before the second is written
(:meth:`PseudoLabelExport.claim`).

What the masks were computed from, its key (:meth:`PseudoLabelExport.key`),
has four fields:

* ``prediction``: :func:`prediction_digest`, the model's unrefined prediction
  (mmdet: masks, scores and labels; mmseg: the label map);
* ``image``: :func:`image_identity`, the image file's absolute path, size and
  mtime (or, for an image rebuilt from the batch input, a digest of its
  pixels);
* ``refiner``: the refiner's fingerprint
  (:func:`~mmsamrefiner.refiner.refiner.fingerprint_of`: its
  settings and the *content* of SAM's weights and of an IoU adapter);
* ``settings``: :func:`key_settings`, the key's version, the prediction's kind
  and the hook's own settings (mmdet: ``score_thr``; mmseg: ``classes``,
  ``background``, ``ignore_index``; both: ``encode_batch``, images per
  encoder call, as batched encoding equals one-by-one encoding only up to
  float rounding).

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
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch

from mmsamrefiner.utils.background import BackgroundWriter
from mmsamrefiner.utils.digest import digest_json, file_stamp, hasher, update_array
from mmsamrefiner.utils.file_keys import find_collision

from .loop_report import LoopCounts
from .prediction_kinds import PredictionKind, prediction_kind

#: What an export's key names, in the order stale exports are explained.
KEY_FIELDS = ('prediction', 'image', 'refiner', 'settings')
#: The first word of every key's ``settings``: raised when the key's format or
#: the refinement it describes changes, so that every earlier export is
#: recomputed once (counted as ``version``).
KEY_VERSION = 4  # 4: exports carry the refiner's signals


def prediction_digest(data_sample) -> str:
    """Digest of the (unrefined) prediction of a data sample, whatever its
    kind (:meth:`~mmsamrefiner.engine.prediction_kinds.PredictionKind.
    update_digest`: mmdet masks, scores and labels, N = 0 included; mmseg the
    label map; shapes included)."""
    digest = hasher()
    prediction_kind(data_sample).update_digest(digest, data_sample)
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


def key_settings(kind: PredictionKind, options) -> str:
    """The key's ``settings``: its version, the prediction's kind and the
    hook's settings the refined masks depend on (``options``: a
    :class:`~mmsamrefiner.engine.prediction_refiner.RefineOptions`)."""
    return (f'v{KEY_VERSION} {kind.name} {kind.key_settings(options)} '
            f'encode_batch={int(options.encode_batch)}')


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
            label maps keep).
        refiner_digest: the refiner's fingerprint (the key's ``refiner``).
        options: the :class:`~mmsamrefiner.engine.prediction_refiner.RefineOptions`
            (the key's ``settings``; ``keep_coarse`` and ``score_thr`` also
            apply to what is read back).
        counts: the loop's counts.
        reuse: read back exports whose key matches (the test loop).
        export_score_thr: mmdet: instances scored under it are left out of
            ``instances.json`` (None: all are written).
        write_behind: images whose export may wait for the export's writer
            thread, which copies them to the host, encodes, writes and
            records them while the loop goes on (0: each is written in
            :meth:`write`, in the loop's thread); :meth:`finish` waits for
            them.

    Raises:
        ValueError: ``out_dir`` is, lies inside or contains what the dataset
            reads (:func:`check_apart_from_inputs`).
    """

    def __init__(self, out_dir: str, dataset, refiner_digest: str, options,
                 counts: LoopCounts, reuse: bool,
                 export_score_thr: Optional[float] = None, write_behind: int = 0) -> None:
        self.out_dir = out_dir
        self.export_score_thr = export_score_thr
        self.dataset = dataset
        self.refiner_digest = refiner_digest
        self.options = options
        self.counts = counts
        self.reuse = reuse
        self.writer = None  # made for the loop's first sample, by its kind
        self.kind: Optional[PredictionKind] = None
        prefix = getattr(dataset, 'data_prefix', None)
        self.img_dir = prefix.get('img_path') if isinstance(prefix, dict) else None
        self.claimed: Dict[str, tuple] = {}  # key -> identity of the image that has it
        check_apart_from_inputs(out_dir, dataset)
        self._writes = BackgroundWriter(write_behind, name='pseudo_label_export')

    def _writer(self, kind: PredictionKind):
        """The loop's writer, made by the kind of its first sample."""
        if self.writer is None:
            self.writer = kind.make_writer(self.out_dir, self.dataset, self.export_score_thr)
            self.kind = kind
        return self.writer

    def key(self, data_sample, batch_input=None) -> dict:
        """What the refinement of ``data_sample``'s (unrefined) prediction is
        computed from: the dict stored with its export (see the module
        docstring)."""
        return dict(prediction=prediction_digest(data_sample),
                    image=image_identity(data_sample, batch_input, self.options.channel_order),
                    refiner=self.refiner_digest,
                    settings=key_settings(prediction_kind(data_sample), self.options))

    def read_back(self, data_sample, batch_input=None) -> Tuple[bool, dict]:
        """``(reused, key)``: with ``reuse``, reads the sample's export back into
        it when its record matches (counted as resumed, or as stale with why)."""
        kind = prediction_kind(data_sample)
        name = self.claim(data_sample)
        writer = self._writer(kind)
        key = self.key(data_sample, batch_input)
        if not self.reuse:
            return False, key
        record, _ = writer.records.check(name, *record_digests(key))
        reused = record is not None and kind.read_back(writer, name, data_sample, self.options,
                                                       self.counts)
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

    def claim(self, data_sample) -> str:
        """The sample's key (its kind's ``key``), once it is known that no
        other image of this loop has it.

        Raises:
            ValueError: the sample's export cannot be named (no ``img_id``
                nor ``img_path`` for mmdet, no ``img_path`` for mmseg), or
                another image of this loop reached the same key (its export
                would be overwritten); nothing of this one is written.
        """
        kind = prediction_kind(data_sample)
        kind.check_nameable(data_sample)
        key = kind.key(data_sample, self.img_dir)
        identity = kind.identity(data_sample)
        first = self.claimed.setdefault(key, identity)
        if find_collision([(key, first), (key, identity)]) is not None:
            where = osp.join(self.out_dir, self._writer(kind).relpath(key))
            raise ValueError(kind.collision_message(where, first, identity, self.img_dir))
        return key

    def write(self, data_sample, key: dict) -> None:
        """Write the sample's refined prediction (N = 0 instances or an empty
        label map included), then its record: behind the loop, in the
        export's writer thread, with ``write_behind``.  The name is claimed
        (:meth:`claim`) and the prediction taken from the sample
        (``kind.exported``) now."""
        kind = prediction_kind(data_sample)
        name = self.claim(data_sample)
        writer = self._writer(kind)
        self._writes.submit(partial(self._write, kind, writer, name, kind.exported(data_sample),
                                    key, data_sample.metainfo.get('img_path')))

    @staticmethod
    def _write(kind: PredictionKind, writer, name: str, exported: dict, key: dict,
               img_path: Optional[str]) -> None:
        """Write one image's export (copied to the host, encoded, written
        atomically), then its record."""
        outputs, num_masks = kind.write(writer, name, exported)
        input_digest, settings = record_digests(key)
        writer.records.write(name, status='refined', input=input_digest, settings=settings,
                             outputs=outputs, fields=key, img_path=img_path,
                             num_masks=num_masks)

    def drain(self) -> None:
        """Wait until every image handed to :meth:`write` is written and
        recorded; raise the first error met writing one (later ones are then
        not written)."""
        self._writes.drain()

    def finish(self, logger) -> None:
        """At the loop's end: every image written (:meth:`drain`), then what
        the kind does (mmdet: the parts are merged into ``instances.json``
        by the main process, once every rank has written its parts, leaving
        out instances under ``export_score_thr``)."""
        self.drain()
        if self.writer is not None:
            self.kind.finish(self.writer, logger)
