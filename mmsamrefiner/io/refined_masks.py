# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Writers of refined collections, the counterparts of :mod:`.coarse_masks`.

Every image ends with a record ``<out>/.records/<key>.json`` written last
(``status`` ``'refined'`` or ``'failed'`` with its reason, mask counts, time),
so a record means the image is finished; a re-run skips recorded images.
All files are written atomically.

* :class:`RefinedCocoWriter`: per image a part with the refined RLE and score
  of each refined annotation; :meth:`~RefinedCocoWriter.merge` writes the input
  json with those segmentations replaced (every other field kept, the refined
  score in ``refined_score``).
* :class:`RefinedLabelMapWriter`: ``<out_dir>/<stem>.png``, palette kept.
* :class:`RefinedBinaryMaskWriter`: ``<out_dir>/<stem>/<name>.png`` (0/255).
"""
import copy
import glob
import io
import json
import os.path as osp
from typing import List, Optional

import numpy as np
from PIL import Image

from .atomic import atomic_write_bytes, atomic_write_json
from .pseudo_labels import encode_rle


class RecordBook:
    """Per-image completion records under ``<out_dir>/.records``."""

    def __init__(self, out_dir: str):
        self.dir = osp.join(out_dir, '.records')

    def path(self, key: str) -> str:
        return osp.join(self.dir, key + '.json')

    def done(self, key: str) -> bool:
        return osp.exists(self.path(key))

    def write(self, key: str, **record) -> None:
        atomic_write_json(self.path(key), dict(key=key, **record))

    def all(self) -> List[dict]:
        records = []
        for path in sorted(glob.glob(osp.join(self.dir, '*.json'))):
            with open(path) as f:
                records.append(json.load(f))
        return records


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
        self.records = RecordBook(self.parts_dir)

    def write(self, key: str, ann_ids: List, masks: np.ndarray, scores: np.ndarray) -> None:
        """Refined (N, H, W) bool masks and (N,) scores of annotations ``ann_ids``."""
        rles = encode_rle(masks) if len(masks) else []
        atomic_write_json(osp.join(self.parts_dir, key + '.json'), {
            str(ann_id): dict(segmentation=rle, refined_score=float(score))
            for ann_id, rle, score in zip(ann_ids, rles, scores)})

    def merge(self) -> str:
        """The input json with every refined annotation's segmentation replaced."""
        refined = {}
        for path in glob.glob(osp.join(self.parts_dir, '*.json')):
            with open(path) as f:
                refined.update(json.load(f))
        coco = copy.deepcopy(self.coco)
        for ann in coco.get('annotations', []):
            update = refined.get(str(ann['id']))
            if update is not None:
                ann['segmentation'] = update['segmentation']
                ann['refined_score'] = update['refined_score']
        atomic_write_json(self.out_file, coco)
        return self.out_file


def encode_label_png(label_map: np.ndarray, palette: Optional[np.ndarray]) -> bytes:
    """PNG bytes of an (H, W) label map: palette mode when ``palette`` is
    given ((K, 3) uint8), grey (8 or 16 bit) otherwise."""
    if label_map.min() < 0 or label_map.max() > (255 if palette is not None else 65535):
        raise ValueError(f'label values {label_map.min()}..{label_map.max()} do not fit a '
                         f'{"palette" if palette is not None else "grey"} PNG')
    if palette is not None:
        image = Image.fromarray(label_map.astype(np.uint8), mode='P')
        image.putpalette(palette.reshape(-1).tolist())
    elif label_map.max() < 256:
        image = Image.fromarray(label_map.astype(np.uint8), mode='L')
    else:
        image = Image.fromarray(label_map.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


class RefinedLabelMapWriter:
    """Refined label maps as ``<out_dir>/<stem>.png``, palette kept."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.records = RecordBook(out_dir)

    def write(self, key: str, label_map: np.ndarray, palette: Optional[np.ndarray]) -> None:
        atomic_write_bytes(osp.join(self.out_dir, key + '.png'),
                           encode_label_png(label_map, palette))


class RefinedBinaryMaskWriter:
    """Refined instance masks as ``<out_dir>/<stem>/<name>.png`` (0/255)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.records = RecordBook(out_dir)

    def write(self, key: str, names: List[str], masks: np.ndarray) -> None:
        for name, mask in zip(names, masks):
            atomic_write_bytes(osp.join(self.out_dir, key, name),
                               encode_label_png(mask.astype(np.uint8) * 255, None))
