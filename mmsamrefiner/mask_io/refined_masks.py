# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Writers of refined masks: one protocol, five formats.

A coarse-mask collection refined by ``tools/refine.py`` (the counterparts of
:mod:`.coarse_masks`): :class:`RefinedCocoWriter`,
:class:`RefinedLabelMapWriter`, :class:`RefinedBinaryMaskWriter`; a model's
refined predictions exported by :class:`~mmsamrefiner.engine.SAMRefinerHook`:
:class:`PseudoLabelCocoWriter` (mmdet instances, one new COCO json) and
:class:`PseudoLabelMapWriter` (mmseg label maps).

**The writer protocol.**  A writer writes one run's outputs, one image at a
time, each named by its ``key`` (a file-system safe name, never a path:
:func:`~mmsamrefiner.utils.file_keys.file_key`), into its folder ``root``.
Every writer has:

* ``root``: the folder of its outputs, of its records and of the run's
  :class:`~.records.OutputLock` (``<root>/.lock``);
* ``records``: its :class:`~.records.RecordBook` (``<root>/.records/``),
  which the caller writes after the image's outputs;
* ``relpath(key)``: where the output of ``key`` lies, relative to ``root``
  (its main file; a folder of files for :class:`RefinedBinaryMaskWriter`);
  every file of the output is named ``<key>`` plus a suffix;
* ``has(key)``: whether an output of ``key`` exists, recorded or not;
* ``write(key, ...)``: one image's output (the format's arrays, named in each
  writer's ``write``), written atomically; returns ``{path relative to root:
  digest of its content}``, the record's ``outputs``;
* ``read(key)``: that output back, as a dict named like ``write``'s
  arguments; None when it is missing or cannot be read;
* ``discard(key)``: remove the output of ``key`` (an image whose input cannot
  be read); returns ``{}``, the record's ``outputs``;
* ``merge(keys=None)``: gather the outputs of ``keys`` (None: all) into the
  format's one file where it has one (the COCO writers) and return its path;
  None for the formats without one.

A file that cannot be written raises
:class:`~.records.OutputWriteError` naming it.

Layouts:

* :class:`RefinedCocoWriter`: ``--out refined.json`` is a file, so its root is
  the folder beside it, ``refined.json.parts/``, holding per image a part
  ``<key>.json`` with the refined RLE and signals of each refined annotation;
  :meth:`~RefinedCocoWriter.merge` writes the input json with those
  segmentations replaced (every other field kept, the signals added as
  :data:`SIGNAL_FIELDS`; an image without a part keeps its annotations);
* :class:`RefinedLabelMapWriter`: ``<root>/<key>.png``, palette kept, and the
  image's table of class signals ``<root>/<key>.json``;
  :meth:`~RefinedLabelMapWriter.merge` gathers the tables into
  ``<root>/class_signals.csv``;
* :class:`RefinedBinaryMaskWriter`: ``<root>/<key>/<name>.png`` (0/255) and
  the masks' signals ``<root>/<key>/signals.json``;
* :class:`PseudoLabelCocoWriter`: ``<root>/parts/<key>.json`` per image
  (annotations with the signals), merged into ``<root>/instances.json``;
* :class:`PseudoLabelMapWriter`: ``<root>/<key>.png`` and, when the refiner
  gave them, the class signals ``<root>/<key>.json``.

**Signals** (:mod:`mmsamrefiner.refiner.signals`): per refined mask SAM's
predicted IoU, SAM's stability score and the IoU with the coarse mask; per
class of a label map the table of
:func:`~mmsamrefiner.refiner.signals.class_signals`.  0 for a mask that was
not refined.
"""
import copy
import csv
import glob
import io
import json
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from mmsamrefiner.utils.atomic import atomic_write_bytes
from mmsamrefiner.utils.digest import digest_bytes
from mmsamrefiner.utils.file_keys import file_key

from .coarse_masks import read_binary_mask, read_label_map
from .png import encode_png
from .records import RecordBook, writing
from .rle import decode_rle, encode_rle


def _write(root: str, relpath: str, data: bytes) -> Dict[str, str]:
    path = osp.join(root, relpath)
    with writing(path):
        atomic_write_bytes(path, data)
    return {relpath: digest_bytes(data)}


def _remove(path: str) -> None:
    """Remove an output file if it exists."""
    with writing(path):
        if osp.exists(path):
            os.remove(path)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj).encode('utf-8')


#: each instance signal's field in the COCO outputs (annotations of the
#: refined json, parts of the hook's export)
SIGNAL_FIELDS = dict(score='refined_score', stability='refined_stability',
                     coarse_iou='refined_coarse_iou')


def signal_fields(scores: np.ndarray, stability: Optional[np.ndarray],
                  coarse_iou: Optional[np.ndarray]) -> List[Dict[str, float]]:
    """Per mask ``{field: value}`` of :data:`SIGNAL_FIELDS` (a signal given
    as None is left out)."""
    values = dict(score=scores, stability=stability, coarse_iou=coarse_iou)
    given = {SIGNAL_FIELDS[name]: v for name, v in values.items() if v is not None}
    return [{field: float(v[i]) for field, v in given.items()} for i in range(len(scores))]


def class_table_rows(table: Optional[Dict[str, np.ndarray]]) -> Optional[List[dict]]:
    """A class-signals table (column -> (K,) array, as
    :func:`~mmsamrefiner.refiner.signals.class_signals` makes it) as K
    JSON-able rows, columns in the table's order (None: None)."""
    if table is None:
        return None
    count = len(next(iter(table.values()))) if table else 0
    return [{name: np.asarray(column)[i].item() for name, column in table.items()}
            for i in range(count)]


def _read_json(path: str):
    """The content of a json file; None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class _Writer:
    """What every writer shares (see the module docstring): ``root``,
    ``records``, ``has``, ``discard`` of a one-file output, no ``merge``."""

    def __init__(self, root: str):
        self.root = root
        self.records = RecordBook(root)

    def relpath(self, key: str) -> str:
        raise NotImplementedError

    def has(self, key: str) -> bool:
        """Whether an output of ``key`` exists (recorded or not)."""
        return osp.exists(osp.join(self.root, self.relpath(key)))

    def discard(self, key: str) -> Dict[str, str]:
        """Remove the output of ``key`` if there is one; ``{}``."""
        _remove(osp.join(self.root, self.relpath(key)))
        return {}

    def merge(self, keys: Optional[Iterable[str]] = None) -> Optional[str]:
        """Nothing to gather in this format: None."""
        return None


class RefinedCocoWriter(_Writer):
    """Refined COCO instances: a part per image, merged into one json.

    Args:
        out_file: the merged json; the parts, records and lock go to
            ``<out_file>.parts/`` (the root).
        coco: the input json's content (kept apart from the refined masks).
    """

    def __init__(self, out_file: str, coco: dict):
        super().__init__(out_file + '.parts')
        self.out_file = out_file
        self.coco = coco

    def relpath(self, key: str) -> str:
        return key + '.json'

    def write(self, key: str, ann_ids: List, masks: np.ndarray, scores: np.ndarray,
              stability: Optional[np.ndarray] = None,
              coarse_iou: Optional[np.ndarray] = None) -> Dict[str, str]:
        """Refined (N, H, W) bool masks of annotations ``ann_ids`` (none: the
        image's annotations pass through unchanged) and their (N,) signals:
        scores, stability scores, IoUs with the coarse masks."""
        rles = encode_rle(masks) if len(masks) else []
        fields = signal_fields(scores, stability, coarse_iou)
        return _write(self.root, self.relpath(key), _json_bytes({
            str(ann_id): dict(segmentation=rle, **signals)
            for ann_id, rle, signals in zip(ann_ids, rles, fields)}))

    def _part(self, key: str) -> Optional[dict]:
        try:
            with open(osp.join(self.root, self.relpath(key))) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def read(self, key: str) -> Optional[dict]:
        """``ann_ids`` (as str, the part's keys), ``masks`` (N, H, W) bool
        ((0, 0, 0) for none) and the signals ``scores``, ``stability``,
        ``coarse_iou`` (N,) float32 (0 for a signal the part lacks)."""
        try:
            part = self._part(key)
            if part is None:
                return None
            rles = [update['segmentation'] for update in part.values()]
            height, width = rles[0]['size'] if rles else (0, 0)
            def signal(name):
                field = SIGNAL_FIELDS[name]
                return np.array([u.get(field, 0.0) for u in part.values()], np.float32)

            return dict(ann_ids=list(part), masks=decode_rle(rles, height, width),
                        scores=signal('score'), stability=signal('stability'),
                        coarse_iou=signal('coarse_iou'))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def merge(self, keys: Optional[Iterable[str]] = None) -> str:
        """The input json with every refined annotation's segmentation
        replaced, from the parts of ``keys`` (the images' ``file_key(id)``;
        default: every image of the json).  A part only applies to its own
        image's annotations."""
        if keys is None:
            keys = [file_key(im['id']) for im in self.coco.get('images', [])]
        refined = {}
        for key in keys:
            part = self._part(key)
            if part is not None:
                refined[key] = part
        coco = copy.deepcopy(self.coco)
        for ann in coco.get('annotations', []):
            if 'id' not in ann:
                continue
            update = refined.get(file_key(ann['image_id']), {}).get(str(ann['id']))
            if update is not None:
                ann.update(update)
        with writing(self.out_file):
            atomic_write_bytes(self.out_file, _json_bytes(coco))
        return self.out_file


class _ClassTables:
    """Label-map writers: the PNG ``<key>.png`` and beside it, when given,
    the image's class signals ``<key>.json`` (a list of rows,
    :func:`class_table_rows`); :meth:`merge` gathers them into
    ``<root>/class_signals.csv``."""

    def relpath(self, key: str) -> str:
        return key + '.png'

    def table_relpath(self, key: str) -> str:
        return key + '.json'

    def _write_table(self, key: str, rows: Optional[List[dict]]) -> Dict[str, str]:
        """The table of ``key`` (None: none, and an old one removed)."""
        if rows is None:
            _remove(osp.join(self.root, self.table_relpath(key)))
            return {}
        return _write(self.root, self.table_relpath(key), _json_bytes(rows))

    def read_table(self, key: str) -> Optional[List[dict]]:
        """The class signals of ``key`` as rows (None: none or unreadable)."""
        rows = _read_json(osp.join(self.root, self.table_relpath(key)))
        return rows if isinstance(rows, list) else None

    def discard(self, key: str) -> Dict[str, str]:
        """Remove the label map and the table of ``key``; ``{}``."""
        _remove(osp.join(self.root, self.relpath(key)))
        _remove(osp.join(self.root, self.table_relpath(key)))
        return {}

    @property
    def out_file(self) -> str:
        """The gathered table, ``<root>/class_signals.csv``."""
        return osp.join(self.root, 'class_signals.csv')

    def merge(self, keys: Optional[Iterable[str]] = None) -> Optional[str]:
        """Gather the class tables of ``keys`` (None: every ``<key>.json``
        in the folder) into :attr:`out_file`, one row per image and refined
        class: ``image`` (the key), then the tables' columns; returns its
        path.  None (and no file) when no map has a table."""
        if keys is None:
            keys = sorted(osp.relpath(path, self.root)[:-len('.json')] for path in
                          glob.glob(osp.join(glob.escape(self.root), '**', '*.json'),
                                    recursive=True))
        tables = {key: self.read_table(key) for key in keys}
        if all(table is None for table in tables.values()):  # no map has a table
            _remove(self.out_file)
            return None
        rows = [dict(image=key, **row) for key, table in tables.items() for row in table or []]
        columns = list(dict.fromkeys(name for row in rows for name in row)) or ['image']
        text = io.StringIO()
        table = csv.DictWriter(text, columns, lineterminator='\n')
        table.writeheader()
        table.writerows(rows)
        with writing(self.out_file):
            atomic_write_bytes(self.out_file, text.getvalue().encode('utf-8'))
        return self.out_file


class RefinedLabelMapWriter(_ClassTables, _Writer):
    """Refined label maps as ``<root>/<key>.png``, palette kept, each with
    its class signals ``<root>/<key>.json``; :meth:`merge` gathers those
    into ``<root>/class_signals.csv``."""

    def write(self, key: str, label_map: np.ndarray, palette: Optional[np.ndarray],
              classes: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, str]:
        """An (H, W) label map, its palette ((K, 3) uint8, or None: grey)
        and the signals of its refined classes (a table column -> array;
        None for a map passed through unrefined: no table)."""
        outputs = _write(self.root, self.relpath(key), encode_png(label_map, palette))
        outputs.update(self._write_table(key, class_table_rows(classes)))
        return outputs

    def read(self, key: str) -> Optional[dict]:
        """``label_map`` (H, W) int64, ``palette`` (or None) and ``classes``
        (the table's rows, or None)."""
        try:
            label_map, palette = read_label_map(osp.join(self.root, self.relpath(key)))
        except (OSError, ValueError):
            return None
        return dict(label_map=label_map, palette=palette, classes=self.read_table(key))



class RefinedBinaryMaskWriter(_Writer):
    """Refined instance masks as ``<root>/<key>/<name>.png`` (0/255)."""

    def relpath(self, key: str) -> str:
        return key

    def has(self, key: str) -> bool:
        """Whether a mask of ``key`` exists (recorded or not)."""
        return bool(self._pngs(key))

    def _pngs(self, key: str) -> List[str]:
        return sorted(glob.glob(osp.join(self.root, glob.escape(self.relpath(key)), '*.png')))

    def signals_relpath(self, key: str) -> str:
        return osp.join(self.relpath(key), 'signals.json')

    def write(self, key: str, names: List[str], masks: np.ndarray,
              scores: Optional[np.ndarray] = None, stability: Optional[np.ndarray] = None,
              coarse_iou: Optional[np.ndarray] = None) -> Dict[str, str]:
        """(N, H, W) bool masks as the files ``names`` and, given ``scores``,
        their signals as ``signals.json`` (``{name: {field: value}}``,
        :data:`SIGNAL_FIELDS`); removes the image's PNGs not among
        ``names`` (left by an earlier run), and an old ``signals.json``
        when no signals are given."""
        outputs = {}
        for name, mask in zip(names, masks):
            outputs.update(_write(self.root, osp.join(self.relpath(key), name),
                                  encode_png(mask.astype(np.uint8) * 255)))
        for path in self._pngs(key):
            if osp.join(self.relpath(key), osp.basename(path)) not in outputs:
                _remove(path)
        if scores is not None and len(names):
            fields = signal_fields(scores, stability, coarse_iou)
            outputs.update(_write(self.root, self.signals_relpath(key),
                                  _json_bytes(dict(zip(names, fields)))))
        else:
            _remove(osp.join(self.root, self.signals_relpath(key)))
        return outputs

    def read(self, key: str) -> Optional[dict]:
        """``names`` (sorted) and ``masks`` (N, H, W) bool (None without a
        mask, as for an image written without masks)."""
        paths = self._pngs(key)
        try:
            masks = np.stack([read_binary_mask(path) for path in paths])
        except (OSError, ValueError):  # none, unreadable, or masks of different sizes
            return None
        return dict(names=[osp.basename(p) for p in paths], masks=masks,
                    signals=_read_json(osp.join(self.root, self.signals_relpath(key))))

    def discard(self, key: str) -> Dict[str, str]:
        """Remove the image's masks; ``{}``."""
        return self.write(key, [], np.zeros((0, 1, 1), bool))


class PseudoLabelCocoWriter(_Writer):
    """A model's refined instances as one new COCO json (mmdet).

    Per image a part ``<root>/parts/<key>.json`` (the image entry and its
    annotations with RLE masks and scores; none for an image without
    instances); :meth:`merge` gathers the parts into
    ``<root>/instances.json`` (``images``, ``annotations``,
    ``categories``), which mmdet's ``CocoDataset`` reads as ground truth.
    Boxes are xywh pixels (COCO).

    Args:
        root: the parts, the records and the merged file.
        classes: class names; label ``i`` is ``classes[i]``.
        cat_ids: COCO category id of each label (mmdet's
            ``CocoDataset.cat_ids``); default ``1 .. len(classes)``.
        score_thr: :meth:`merge` leaves annotations scored under it out of
            ``instances.json`` (not out of the parts, which keep every
            instance for resuming); every image keeps its entry.  None: all
            are written.
    """

    def __init__(self, root: str, classes: Sequence[str],
                 cat_ids: Optional[Sequence[int]] = None,
                 score_thr: Optional[float] = None):
        super().__init__(root)
        self.classes = list(classes)
        self.cat_ids = list(cat_ids) if cat_ids is not None else list(
            range(1, len(self.classes) + 1))
        if len(self.cat_ids) != len(self.classes):
            raise ValueError(f'{len(self.cat_ids)} cat_ids for {len(self.classes)} classes')
        self.score_thr = score_thr
        self._label_of = {c: i for i, c in enumerate(self.cat_ids)}
        self.num_left_out = 0  # by the last merge's score_thr

    def relpath(self, key: str) -> str:
        return osp.join('parts', key + '.json')

    def write(self, key: str, img_id, file_name: str, masks: np.ndarray,
              labels: np.ndarray, scores: np.ndarray,
              signals: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, str]:
        """One image's instances: (N, H, W) bool masks, (N,) int labels
        (indices into ``classes``), (N,) float scores (the model's), N = 0
        included (the image entry alone), and the refiner's (N,) signals
        (``scores``, ``stability``, ``coarse_iou``; None: none), written as
        :data:`SIGNAL_FIELDS`."""
        if masks.ndim != 3:
            raise ValueError(f'masks must be (N, H, W), got shape {masks.shape}')
        height, width = masks.shape[1:]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f'labels must index the {len(self.classes)} classes, got '
                             f'{labels.min()}..{labels.max()} (does the model predict the '
                             "dataset's classes?)")
        from pycocotools import mask as mask_utils
        annotations = []
        fields = [{}] * len(masks) if signals is None else signal_fields(
            signals['scores'], signals.get('stability'), signals.get('coarse_iou'))
        for rle, label, score, extra in zip(encode_rle(masks), labels, scores, fields):
            coded = dict(rle, counts=rle['counts'].encode('ascii'))
            x, y, w, h = mask_utils.toBbox(coded)
            annotations.append(dict(
                image_id=img_id, category_id=self.cat_ids[int(label)], segmentation=rle,
                area=int(mask_utils.area(coded)), bbox=[float(x), float(y), float(w), float(h)],
                score=float(score), iscrowd=0, **extra))
        part = dict(image=dict(id=img_id, file_name=file_name, height=height, width=width),
                    annotations=annotations)
        return _write(self.root, self.relpath(key), _json_bytes(part))

    def read(self, key: str) -> Optional[Dict[str, np.ndarray]]:
        """``masks`` (N, H, W) bool, ``labels`` (N,) int64, ``scores`` (N,)
        float32."""
        try:
            with open(osp.join(self.root, self.relpath(key))) as f:
                part = json.load(f)
            image, annotations = part['image'], part['annotations']
            return dict(
                masks=decode_rle([a['segmentation'] for a in annotations],
                                 image['height'], image['width']),
                labels=np.array([self._label_of[a['category_id']] for a in annotations],
                                np.int64),
                scores=np.array([a['score'] for a in annotations], np.float32))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def out_file(self) -> str:
        """The merged file, ``<root>/instances.json``."""
        return osp.join(self.root, 'instances.json')

    def merge(self, keys: Optional[Iterable[str]] = None) -> str:
        """Gather the parts of ``keys`` (None: every part in the folder) into
        :attr:`out_file`, leaving out annotations under ``score_thr`` (how
        many: :attr:`num_left_out` afterwards); annotation ids follow image
        order."""
        if keys is None:
            paths = sorted(glob.glob(osp.join(self.root, 'parts', '*.json')))
        else:
            paths = [osp.join(self.root, self.relpath(key)) for key in keys
                     if self.has(key)]
        images, annotations = [], []
        self.num_left_out = 0
        for path in paths:
            with open(path) as f:
                part = json.load(f)
            images.append(part['image'])
            kept = [a for a in part['annotations']
                    if self.score_thr is None or a['score'] >= self.score_thr]
            self.num_left_out += len(part['annotations']) - len(kept)
            annotations.extend(kept)
        images.sort(key=lambda im: (str(type(im['id'])), im['id']))
        order = {im['id']: i for i, im in enumerate(images)}
        annotations.sort(key=lambda a: order[a['image_id']])
        for index, annotation in enumerate(annotations, 1):
            annotation['id'] = index
        categories = [dict(id=c, name=n) for c, n in zip(self.cat_ids, self.classes)]
        with writing(self.out_file):
            atomic_write_bytes(self.out_file, _json_bytes(
                dict(images=images, annotations=annotations, categories=categories)))
        return self.out_file


class PseudoLabelMapWriter(_ClassTables, _Writer):
    """A model's refined label maps (mmseg), one PNG per image,
    ``<root>/<key>.png``: 8-bit grey when every value fits 8 bits, else
    16-bit, with its class signals ``<root>/<key>.json`` when the refiner
    gave them.  ``key`` may hold ``/`` (``a/x``: ``<root>/a/x.png``, the
    layout of mmseg's datasets, whose image folders may have sub-folders);
    the caller makes each of its components safe."""

    def write(self, key: str, label_map: np.ndarray,
              classes: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, str]:
        """An (H, W) integer label map (values 0..65535) and the signals of
        its refined classes (None: no table)."""
        if label_map.ndim != 2:
            raise ValueError(f'label map must be (H, W), got shape {label_map.shape}')
        outputs = _write(self.root, self.relpath(key), encode_png(label_map))
        outputs.update(self._write_table(key, class_table_rows(classes)))
        return outputs

    def read(self, key: str) -> Optional[dict]:
        """``label_map`` (H, W) int64."""
        import cv2
        label_map = cv2.imread(osp.join(self.root, self.relpath(key)), cv2.IMREAD_UNCHANGED)
        return None if label_map is None else dict(label_map=label_map.astype(np.int64))
