# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Writers and readers of refined pseudo-labels, one file per image.

* :class:`CocoInstanceWriter` (mmdet): one JSON part per image under
  ``<out_dir>/parts/`` holding COCO annotations with RLE masks;
  :meth:`CocoInstanceWriter.merge` gathers the parts into one COCO instance
  file (``images``, ``annotations``, ``categories``) that mmdet's
  ``CocoDataset`` reads as ground truth.
* :class:`LabelMapWriter` (mmseg): one PNG label map per image, named after the
  image (``<out_dir>/<image stem>.png``), the layout of mmseg's datasets.

Every write is atomic (:mod:`mmsamrefiner.utils.atomic`), and a part that exists is
a finished image.  Each write may carry a ``key``: a JSON-ready description of
what the masks were computed from (the hook stores the digests of the
predictions, the image and the refiner); ``read(..., key=key)`` gives the
masks back only when the stored key equals it, so a re-run reuses an export
only when it would compute the same thing (resume), and recomputes otherwise.
The COCO part holds its key (``part['key']``, one atomic file); a label map's
key lives in a sidecar ``<out_dir>/<image stem>.key.json`` with a digest of
the PNG's content, so a PNG and a sidecar of different writes never match.
Masks are (N, H, W) bool in the original image frame; boxes are xyxy pixels in
memory and xywh in COCO files.
"""
import glob
import json
import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np

from mmsamrefiner.utils.atomic import atomic_write_json
from mmsamrefiner.utils.digest import digest_arrays
from .png import atomic_write_png

_MISSING = object()

ImageId = Union[int, str]


def encode_rle(masks: np.ndarray) -> List[dict]:
    """(N, H, W) bool masks -> N COCO RLEs with ``counts`` as str (JSON-ready)."""
    from pycocotools import mask as mask_utils  # where RLEs are coded, not at import
    if masks.ndim != 3:
        raise ValueError(f'masks must be (N, H, W), got shape {masks.shape}')
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle['counts'] = rle['counts'].decode('ascii')
    return rles


def decode_rle(rles: Sequence[dict], height: int, width: int) -> np.ndarray:
    """COCO RLEs -> (N, H, W) bool masks (N = 0 gives an empty (0, H, W) array)."""
    if len(rles) == 0:
        return np.zeros((0, height, width), bool)
    rles = [dict(size=r['size'], counts=r['counts'].encode('ascii')
                 if isinstance(r['counts'], str) else r['counts']) for r in rles]
    from pycocotools import mask as mask_utils
    return mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)


def _json_round_trip(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists...)."""
    return json.loads(json.dumps(value))


def _label_map_digest(label_map: np.ndarray) -> str:
    """Digest of an (H, W) label map's values and shape, whatever its dtype
    (taken as int64, as it reads back)."""
    return digest_arrays(np.asarray(label_map, np.int64))


def _safe_name(name: ImageId) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]', '_', str(name))


class CocoInstanceWriter:
    """Refined instance masks of a dataset, written as COCO parts, then merged.

    Args:
        out_dir (str): Directory of the parts and of the merged file.
        classes (Sequence[str]): Class names; label ``i`` is ``classes[i]``.
        cat_ids (Sequence[int], optional): COCO category id of each label
            (mmdet's ``CocoDataset.cat_ids``); default ``1 .. len(classes)``.
    """

    def __init__(self, out_dir: str, classes: Sequence[str],
                 cat_ids: Optional[Sequence[int]] = None):
        self.out_dir = out_dir
        self.classes = list(classes)
        self.cat_ids = list(cat_ids) if cat_ids is not None else list(
            range(1, len(self.classes) + 1))
        if len(self.cat_ids) != len(self.classes):
            raise ValueError(f'{len(self.cat_ids)} cat_ids for {len(self.classes)} classes')
        self._label_of = {c: i for i, c in enumerate(self.cat_ids)}

    def part_path(self, img_id: ImageId) -> str:
        return osp.join(self.out_dir, 'parts', _safe_name(img_id) + '.json')

    def has(self, img_id: ImageId) -> bool:
        return osp.exists(self.part_path(img_id))

    def write(self, img_id: ImageId, file_name: str, masks: np.ndarray,
              labels: np.ndarray, scores: np.ndarray, key: Any = None) -> None:
        """Write one image's instances: (N, H, W) bool masks, (N,) int labels
        (indices into ``classes``), (N,) float scores; ``key`` (JSON-ready,
        optional) is stored in the part, see :meth:`read`."""
        height, width = masks.shape[1:]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f'labels must index the {len(self.classes)} classes, got '
                             f'{labels.min()}..{labels.max()} (does the model predict the '
                             "dataset's classes?)")
        from pycocotools import mask as mask_utils
        rles = encode_rle(masks)
        annotations = []
        for rle, label, score in zip(rles, labels, scores):
            x, y, w, h = mask_utils.toBbox(dict(rle, counts=rle['counts'].encode('ascii')))
            annotations.append(dict(
                image_id=img_id, category_id=self.cat_ids[int(label)], segmentation=rle,
                area=int(mask_utils.area(dict(rle, counts=rle['counts'].encode('ascii')))),
                bbox=[float(x), float(y), float(w), float(h)], score=float(score), iscrowd=0))
        part = dict(image=dict(id=img_id, file_name=file_name, height=height, width=width),
                    annotations=annotations)
        if key is not None:
            part['key'] = key
        atomic_write_json(self.part_path(img_id), part)

    def stored_key(self, img_id: ImageId) -> Any:
        """The key written with the image's part (None: no part, no key, or
        an unreadable part)."""
        try:
            with open(self.part_path(img_id)) as f:
                return json.load(f).get('key')
        except (OSError, ValueError, AttributeError):
            return None

    def read(self, img_id: ImageId, key: Any = _MISSING) -> Optional[Dict[str, np.ndarray]]:
        """One image's instances back: ``masks`` (N, H, W) bool, ``labels``
        (N,) int64, ``scores`` (N,) float32.

        With ``key``: None unless the part was written with an equal key
        (after a JSON round trip), or when the part is missing or unreadable.
        """
        try:
            with open(self.part_path(img_id)) as f:
                part = json.load(f)
        except (OSError, ValueError):
            if key is _MISSING:
                raise
            return None
        if key is not _MISSING and (key is None or part.get('key') != _json_round_trip(key)):
            return None
        image, annotations = part['image'], part['annotations']
        return dict(
            masks=decode_rle([a['segmentation'] for a in annotations],
                             image['height'], image['width']),
            labels=np.array([self._label_of[a['category_id']] for a in annotations], np.int64),
            scores=np.array([a['score'] for a in annotations], np.float32))

    def merge(self, out_file: Optional[str] = None) -> str:
        """Gather all parts into one COCO instance file (default
        ``<out_dir>/instances.json``); annotation ids follow image order."""
        out_file = out_file or osp.join(self.out_dir, 'instances.json')
        images, annotations = [], []
        for path in sorted(glob.glob(osp.join(self.out_dir, 'parts', '*.json'))):
            with open(path) as f:
                part = json.load(f)
            images.append(part['image'])
            annotations.extend(part['annotations'])
        images.sort(key=lambda im: (str(type(im['id'])), im['id']))
        order = {im['id']: i for i, im in enumerate(images)}
        annotations.sort(key=lambda a: order[a['image_id']])
        for index, annotation in enumerate(annotations, 1):
            annotation['id'] = index
        categories = [dict(id=c, name=n) for c, n in zip(self.cat_ids, self.classes)]
        atomic_write_json(out_file, dict(images=images, annotations=annotations,
                                         categories=categories))
        return out_file


class LabelMapWriter:
    """Refined semantic label maps, one PNG per image (``<image stem>.png``).

    Args:
        out_dir (str): Directory of the PNGs.
    """

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def path(self, img_path: str) -> str:
        stem = osp.splitext(osp.basename(img_path))[0]
        return osp.join(self.out_dir, stem + '.png')

    def key_path(self, img_path: str) -> str:
        """The sidecar holding the key of ``img_path``'s label map."""
        stem = osp.splitext(osp.basename(img_path))[0]
        return osp.join(self.out_dir, stem + '.key.json')

    def has(self, img_path: str) -> bool:
        return osp.exists(self.path(img_path))

    def write(self, img_path: str, label_map: np.ndarray, key: Any = None) -> None:
        """Write an (H, W) integer label map (values up to 65535); ``key``
        (JSON-ready, optional) goes to the sidecar, see :meth:`read`.  Without
        a key, a sidecar of an earlier write is removed."""
        if label_map.ndim != 2:
            raise ValueError(f'label map must be (H, W), got shape {label_map.shape}')
        if label_map.min() < 0 or label_map.max() > 65535:
            raise ValueError('label map values must lie in 0..65535, got '
                             f'{label_map.min()}..{label_map.max()}')
        atomic_write_png(self.path(img_path), label_map)  # 8 or 16 bit grey by its values
        if key is not None:
            # the PNG's digest ties the sidecar to this PNG: after a crash
            # between the two writes, the pair does not match and is stale
            atomic_write_json(self.key_path(img_path),
                              dict(key=key, label_map=_label_map_digest(label_map)))
        elif osp.exists(self.key_path(img_path)):
            os.remove(self.key_path(img_path))

    def stored_key(self, img_path: str) -> Any:
        """The key in ``img_path``'s sidecar (None: none or unreadable)."""
        try:
            with open(self.key_path(img_path)) as f:
                return json.load(f).get('key')
        except (OSError, ValueError, AttributeError):
            return None

    def read(self, img_path: str, key: Any = _MISSING) -> Optional[np.ndarray]:
        """The (H, W) int64 label map written for ``img_path``.

        With ``key``: None unless the sidecar holds an equal key and the
        digest of this very PNG, or when the PNG is missing or unreadable.
        """
        label_map = cv2.imread(self.path(img_path), cv2.IMREAD_UNCHANGED)
        if label_map is None:
            if key is _MISSING:
                raise IOError(f'could not read {self.path(img_path)}')
            return None
        label_map = label_map.astype(np.int64)
        if key is not _MISSING:
            try:
                with open(self.key_path(img_path)) as f:
                    sidecar = json.load(f)
            except (OSError, ValueError):
                return None
            if (key is None or not isinstance(sidecar, dict)
                    or sidecar.get('key') != _json_round_trip(key)
                    or sidecar.get('label_map') != _label_map_digest(label_map)):
                return None
        return label_map
