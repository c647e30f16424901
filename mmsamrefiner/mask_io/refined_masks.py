# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Writers of refined masks, one family with one resume scheme.

Two kinds of input are refined and written here:

* a coarse-mask collection (``tools/refine.py``, the counterparts of
  :mod:`.coarse_masks`): :class:`RefinedCocoWriter`,
  :class:`RefinedLabelMapWriter`, :class:`RefinedBinaryMaskWriter`;
* a model's predictions (:class:`~mmsamrefiner.engine.SAMRefinerHook`'s
  pseudo-label export): :class:`PseudoLabelCocoWriter` (mmdet instances, one
  new COCO json) and :class:`PseudoLabelMapWriter` (mmseg label maps).

Every writer has ``root`` (its output folder), ``records`` (its
:class:`RecordBook`) and ``write(key, ...)`` returning ``{path relative to
root: digest of the content}`` of what it wrote.  Every image ends with a
record ``<out_dir>/.records/<key>.json`` written last, so a record means the
image is finished.  A record binds the result to what
produced it and to what it wrote:

* ``status``: ``'refined'`` or ``'failed'`` (with ``reason``, ``ann_id`` when an
  annotation is at fault, and ``transient``: True for errors of the run, such
  as running out of memory, rather than of the input);
* ``input``: a digest of what was refined (a collection: the source's
  ``input_digest`` of the image, its coarse masks or annotations and the
  image file's name, size and mtime; a prediction: the prediction and the
  image);
* ``settings``: a digest of the refiner (:meth:`SAMRefiner.fingerprint`:
  settings and weights) and of the format's or the hook's options;
* ``outputs``: ``{path relative to out_dir: digest of its content}``;

(digests: :mod:`mmsamrefiner.utils.digest`)
* ``img_path``, ``num_masks``, ``num_empty``, ``seconds``.

:meth:`RecordBook.check` reuses a record only if input and settings digests
match, every output it lists still has its digest and it is not a transient
failure; anything else is redone.  All files are written atomically.

* :class:`RefinedCocoWriter`: per image a part with the refined RLE and score
  of each refined annotation; :meth:`~RefinedCocoWriter.merge` writes the input
  json with those segmentations replaced (every other field kept, the refined
  score in ``refined_score``).
* :class:`RefinedLabelMapWriter`: ``<out_dir>/<stem>.png``, palette kept.
* :class:`RefinedBinaryMaskWriter`: ``<out_dir>/<stem>/<name>.png`` (0/255).

:class:`OutputLock` keeps two runs from writing the same output at once.  A
file that cannot be written (disk full, read-only, no permission) raises
:class:`OutputWriteError` naming it.
"""
import contextlib
import copy
import fcntl
import glob
import json
import os
import os.path as osp
import socket
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmsamrefiner.utils.atomic import atomic_write_bytes
from mmsamrefiner.utils.digest import digest_bytes, digest_file
from mmsamrefiner.utils.file_keys import file_key

from .png import encode_png
from .rle import decode_rle, encode_rle

#: why :meth:`RecordBook.check` does not reuse a record
NEW, INPUT_CHANGED, SETTINGS_CHANGED, OUTPUT_CHANGED, RETRY = (
    'new', 'input changed', 'settings changed', 'output missing or changed',
    'failed transiently before')


def _output_digest(path: str) -> Optional[str]:
    """Digest of an output's content; None if it cannot be read (then it does
    not match its record)."""
    try:
        return digest_file(path)
    except OSError:
        return None


class OutputWriteError(OSError):
    """An output file cannot be written or removed (disk full, read-only file
    system, no permission, quota): ``filename`` is the file, ``errno`` and
    ``strerror`` say why."""


@contextlib.contextmanager
def writing(path: str):
    """Inside, an ``OSError`` becomes an :class:`OutputWriteError` naming
    ``path`` (the error of a full disk names no file)."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as error:
        strerror = error.strerror or (os.strerror(error.errno) if error.errno else str(error))
        raise OutputWriteError(error.errno, strerror, path) from error


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


class RecordBook:
    """Per-image completion records under ``<out_dir>/.records``."""

    def __init__(self, out_dir: str):
        self.root = out_dir
        self.dir = osp.join(out_dir, '.records')

    def path(self, key: str) -> str:
        return osp.join(self.dir, key + '.json')

    def read(self, key: str) -> Optional[dict]:
        """The record of ``key``; None if there is none (or it is unreadable)."""
        try:
            with open(self.path(key)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def done(self, key: str) -> bool:
        """Whether ``key`` has a record (valid or not; see :meth:`check`)."""
        return osp.exists(self.path(key))

    def check(self, key: str, input_digest: str, settings: str) -> Tuple[Optional[dict], str]:
        """``(record, '')`` if ``key``'s record can be reused, else ``(None,
        why)`` with ``why`` one of :data:`NEW`, :data:`INPUT_CHANGED`,
        :data:`SETTINGS_CHANGED`, :data:`OUTPUT_CHANGED`, :data:`RETRY`."""
        record = self.read(key)
        if record is None:
            return None, NEW
        if record.get('input') != input_digest:
            return None, INPUT_CHANGED
        if record.get('settings') != settings:
            return None, SETTINGS_CHANGED
        outputs = record.get('outputs')
        if not isinstance(outputs, dict) or any(
                _output_digest(osp.join(self.root, relpath)) != digest
                for relpath, digest in outputs.items()):
            return None, OUTPUT_CHANGED
        if record.get('status') != 'refined' and (record.get('status') != 'failed'
                                                  or record.get('transient', True)):
            return None, RETRY
        return record, ''

    def write(self, key: str, **record) -> None:
        with writing(self.path(key)):
            atomic_write_bytes(self.path(key), _json_bytes(dict(key=key, **record)))

    def all(self, keys: Optional[Iterable[str]] = None) -> List[dict]:
        """The records of ``keys`` (those that exist), or all records."""
        if keys is None:
            paths = sorted(glob.glob(osp.join(self.dir, '*.json')))
        else:
            paths = [self.path(key) for key in keys]
        records = []
        for path in paths:
            try:
                with open(path) as f:
                    records.append(json.load(f))
            except FileNotFoundError:
                continue
        return records


class OutputBusyError(RuntimeError):
    """Another run holds the :class:`OutputLock` of an output."""


class OutputLock:
    """An exclusive lock on an output (``<out_dir>/.lock``, ``flock``), held by
    one process of a run (rank 0) for the whole run; it goes with the process.

    :meth:`acquire` creates ``out_dir`` (so an unwritable output is found
    here) and raises :class:`OutputBusyError` naming the holder if another
    run has it.
    """

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.path = osp.join(out_dir, '.lock')
        self.fd: Optional[int] = None

    def acquire(self) -> 'OutputLock':
        os.makedirs(self.out_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode('utf-8', 'replace').strip() or 'unknown'
            os.close(fd)
            raise OutputBusyError(
                f'{self.out_dir} is being written by another run ({holder}); wait for it to '
                'finish or give this run another --out') from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}, since '
                      f'{time.strftime("%Y-%m-%d %H:%M:%S")}'.encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> 'OutputLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RefinedCocoWriter:
    """Refined COCO instances: parts per image, merged into one json.

    Args:
        out_file: the merged json; parts go to ``<out_file>.parts/``.
        coco: the input json's content (kept apart from the refined masks).
    """

    def __init__(self, out_file: str, coco: dict):
        self.out_file = out_file
        self.coco = coco
        self.parts_dir = out_file + '.parts'
        self.root = self.parts_dir
        self.records = RecordBook(self.parts_dir)

    def write(self, key: str, ann_ids: List, masks: np.ndarray,
              scores: np.ndarray) -> Dict[str, str]:
        """Refined (N, H, W) bool masks and (N,) scores of annotations
        ``ann_ids`` (none: the image's annotations pass through unchanged);
        returns ``{relative path: digest}`` of what was written."""
        rles = encode_rle(masks) if len(masks) else []
        return _write(self.parts_dir, key + '.json', _json_bytes({
            str(ann_id): dict(segmentation=rle, refined_score=float(score))
            for ann_id, rle, score in zip(ann_ids, rles, scores)}))

    def discard(self, key: str) -> Dict[str, str]:
        """The image's annotations pass through unchanged."""
        return self.write(key, [], np.zeros((0, 1, 1), bool), np.zeros(0))

    def merge(self, keys: Optional[Iterable[str]] = None) -> str:
        """The input json with every refined annotation's segmentation
        replaced, from the parts of ``keys`` (the images' ``file_key(id)``;
        default: every image of the json).  A part only applies to its own
        image's annotations."""
        if keys is None:
            keys = [file_key(im['id']) for im in self.coco.get('images', [])]
        refined = {}
        for key in keys:
            try:
                with open(osp.join(self.parts_dir, key + '.json')) as f:
                    refined[key] = json.load(f)
            except FileNotFoundError:
                continue
        coco = copy.deepcopy(self.coco)
        for ann in coco.get('annotations', []):
            if 'id' not in ann:
                continue
            update = refined.get(file_key(ann['image_id']), {}).get(str(ann['id']))
            if update is not None:
                ann['segmentation'] = update['segmentation']
                ann['refined_score'] = update['refined_score']
        with writing(self.out_file):
            atomic_write_bytes(self.out_file, _json_bytes(coco))
        return self.out_file


class RefinedLabelMapWriter:
    """Refined label maps as ``<out_dir>/<stem>.png``, palette kept."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.root = out_dir
        self.records = RecordBook(out_dir)

    def write(self, key: str, label_map: np.ndarray,
              palette: Optional[np.ndarray]) -> Dict[str, str]:
        """Returns ``{relative path: digest}`` of what was written."""
        return _write(self.out_dir, key + '.png', encode_png(label_map, palette))

    def discard(self, key: str) -> Dict[str, str]:
        """Remove the image's output (its coarse input cannot be read)."""
        _remove(osp.join(self.out_dir, key + '.png'))
        return {}


class RefinedBinaryMaskWriter:
    """Refined instance masks as ``<out_dir>/<stem>/<name>.png`` (0/255)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.root = out_dir
        self.records = RecordBook(out_dir)

    def write(self, key: str, names: List[str], masks: np.ndarray) -> Dict[str, str]:
        """Writes the masks and removes the image's PNGs not among ``names``
        (left by an earlier run); returns ``{relative path: digest}``."""
        outputs = {}
        for name, mask in zip(names, masks):
            outputs.update(_write(self.out_dir, osp.join(key, name),
                                  encode_png(mask.astype(np.uint8) * 255)))
        for path in glob.glob(osp.join(self.out_dir, glob.escape(key), '*.png')):
            if osp.join(key, osp.basename(path)) not in outputs:
                _remove(path)
        return outputs

    def discard(self, key: str) -> Dict[str, str]:
        """Remove the image's outputs (its coarse input cannot be read)."""
        return self.write(key, [], np.zeros((0, 1, 1), bool))


class PseudoLabelCocoWriter:
    """A model's refined instances as one new COCO json (mmdet).

    Per image a part ``<out_dir>/parts/<key>.json`` (the image entry and its
    annotations with RLE masks and scores; none for an image without
    instances); :meth:`merge` gathers the parts into
    ``<out_dir>/instances.json`` (``images``, ``annotations``,
    ``categories``), which mmdet's ``CocoDataset`` reads as ground truth.
    Boxes are xywh pixels (COCO).  ``key`` is a file stem the caller made
    safe (:func:`~mmsamrefiner.utils.file_keys.file_key` of the image id).

    Args:
        out_dir: the parts, the records and the merged file.
        classes: class names; label ``i`` is ``classes[i]``.
        cat_ids: COCO category id of each label (mmdet's
            ``CocoDataset.cat_ids``); default ``1 .. len(classes)``.
    """

    def __init__(self, out_dir: str, classes: Sequence[str],
                 cat_ids: Optional[Sequence[int]] = None):
        self.out_dir = self.root = out_dir
        self.records = RecordBook(out_dir)
        self.classes = list(classes)
        self.cat_ids = list(cat_ids) if cat_ids is not None else list(
            range(1, len(self.classes) + 1))
        if len(self.cat_ids) != len(self.classes):
            raise ValueError(f'{len(self.cat_ids)} cat_ids for {len(self.classes)} classes')
        self._label_of = {c: i for i, c in enumerate(self.cat_ids)}
        self.num_left_out = 0  # by the last merge's score_thr

    @staticmethod
    def relpath(key: str) -> str:
        return osp.join('parts', key + '.json')

    def has(self, key: str) -> bool:
        """Whether an output of ``key`` exists (recorded or not)."""
        return osp.exists(osp.join(self.root, self.relpath(key)))

    def write(self, key: str, img_id, file_name: str, masks: np.ndarray,
              labels: np.ndarray, scores: np.ndarray) -> Dict[str, str]:
        """One image's instances: (N, H, W) bool masks, (N,) int labels
        (indices into ``classes``), (N,) float scores, N = 0 included (the
        image entry alone); returns ``{relative path: digest}``."""
        if masks.ndim != 3:
            raise ValueError(f'masks must be (N, H, W), got shape {masks.shape}')
        height, width = masks.shape[1:]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f'labels must index the {len(self.classes)} classes, got '
                             f'{labels.min()}..{labels.max()} (does the model predict the '
                             "dataset's classes?)")
        from pycocotools import mask as mask_utils
        annotations = []
        for rle, label, score in zip(encode_rle(masks), labels, scores):
            coded = dict(rle, counts=rle['counts'].encode('ascii'))
            x, y, w, h = mask_utils.toBbox(coded)
            annotations.append(dict(
                image_id=img_id, category_id=self.cat_ids[int(label)], segmentation=rle,
                area=int(mask_utils.area(coded)), bbox=[float(x), float(y), float(w), float(h)],
                score=float(score), iscrowd=0))
        part = dict(image=dict(id=img_id, file_name=file_name, height=height, width=width),
                    annotations=annotations)
        return _write(self.root, self.relpath(key), _json_bytes(part))

    def read(self, key: str) -> Optional[Dict[str, np.ndarray]]:
        """The image's instances back (None: no readable part): ``masks`` (N,
        H, W) bool, ``labels`` (N,) int64, ``scores`` (N,) float32."""
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

    def merge(self, out_file: Optional[str] = None, score_thr: Optional[float] = None) -> str:
        """Gather the parts into one COCO instance file (default
        ``<out_dir>/instances.json``); annotation ids follow image order.

        ``score_thr``: annotations scored under it are left out of the file
        (not out of the parts, which keep every instance for resuming); every
        image keeps its entry.  None: all are written.  How many were left
        out is in :attr:`num_left_out` afterwards.
        """
        out_file = out_file or osp.join(self.out_dir, 'instances.json')
        images, annotations = [], []
        self.num_left_out = 0
        for path in sorted(glob.glob(osp.join(self.out_dir, 'parts', '*.json'))):
            with open(path) as f:
                part = json.load(f)
            images.append(part['image'])
            kept = [a for a in part['annotations']
                    if score_thr is None or a['score'] >= score_thr]
            self.num_left_out += len(part['annotations']) - len(kept)
            annotations.extend(kept)
        images.sort(key=lambda im: (str(type(im['id'])), im['id']))
        order = {im['id']: i for i, im in enumerate(images)}
        annotations.sort(key=lambda a: order[a['image_id']])
        for index, annotation in enumerate(annotations, 1):
            annotation['id'] = index
        categories = [dict(id=c, name=n) for c, n in zip(self.cat_ids, self.classes)]
        atomic_write_bytes(out_file, _json_bytes(dict(images=images, annotations=annotations,
                                                      categories=categories)))
        return out_file


class PseudoLabelMapWriter:
    """A model's refined label maps (mmseg), one PNG per image,
    ``<out_dir>/<key>.png``: 8-bit grey when every value fits 8 bits, else
    16-bit.  ``key`` may hold ``/`` (``a/x``: ``<out_dir>/a/x.png``, the
    layout of mmseg's datasets, whose image folders may have sub-folders);
    the caller makes it safe
    (:func:`~mmsamrefiner.engine.pseudo_label_export.label_map_key`)."""

    def __init__(self, out_dir: str):
        self.out_dir = self.root = out_dir
        self.records = RecordBook(out_dir)

    @staticmethod
    def relpath(key: str) -> str:
        return key + '.png'

    def has(self, key: str) -> bool:
        """Whether an output of ``key`` exists (recorded or not)."""
        return osp.exists(osp.join(self.root, self.relpath(key)))

    def write(self, key: str, label_map: np.ndarray) -> Dict[str, str]:
        """An (H, W) integer label map (values 0..65535); returns ``{relative
        path: digest}``."""
        if label_map.ndim != 2:
            raise ValueError(f'label map must be (H, W), got shape {label_map.shape}')
        return _write(self.root, self.relpath(key), encode_png(label_map))

    def read(self, key: str) -> Optional[np.ndarray]:
        """The (H, W) int64 label map of ``key`` (None: missing or unreadable)."""
        import cv2
        label_map = cv2.imread(osp.join(self.root, self.relpath(key)), cv2.IMREAD_UNCHANGED)
        return None if label_map is None else label_map.astype(np.int64)
