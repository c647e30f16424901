# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Coarse-mask collections on disk, the formats users have, read per image.

Each source lists :class:`CoarseItem` s (one per image, cheap: no pixels read)
and loads one item's masks on demand:

* :class:`CocoInstances`: a COCO-style instance json (polygon, RLE or
  uncompressed RLE segmentations) and its image folder;
* :class:`LabelMaps`: a folder of PNG label maps (palette or grey) and the
  image folder, matched by file stem;
* :class:`BinaryMasks`: per image a folder of binary PNGs, one per instance
  (``<mask_dir>/<image stem>/*.png``, 0/255 or 0/1), and the image folder.

Masks are (N, H, W) bool, label maps (H, W) int64, both in the image's frame.
"""
import glob
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


@dataclass
class CoarseItem:
    """One image of a coarse-mask collection.

    Attributes:
        key: a file-system-safe id, unique in the collection (names its output).
        img_path: the image.
        meta: format-specific data (COCO: ``image`` record and ``ann_ids``).
    """
    key: str
    img_path: str
    meta: dict = field(default_factory=dict)


def find_image(img_dir: str, stem: str) -> str:
    """The image file in ``img_dir`` whose name without suffix is ``stem``."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (stem + suffix, stem + suffix.upper()):
            path = osp.join(img_dir, candidate)
            if osp.exists(path):
                return path
    raise FileNotFoundError(f'no image named {stem}.* ({", ".join(IMAGE_SUFFIXES)}) in {img_dir}')


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """An (H, W) bool mask from a COCO segmentation: polygons, uncompressed RLE
    (``counts`` a list) or compressed RLE (``counts`` bytes or str)."""
    if isinstance(segmentation, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get('counts'), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation)
        if isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode('ascii')
    return mask_utils.decode(rle).astype(bool)


def read_label_map(path: str):
    """(H, W) int64 label map and its palette ((K, 3) uint8 RGB, or None for grey)."""
    with Image.open(path) as image:
        palette = image.getpalette() if image.mode == 'P' else None
        if image.mode not in ('P', 'L', 'I', 'I;16'):
            raise ValueError(f'{path} is a {image.mode} image; label maps must be palette '
                             "('P') or single-channel PNGs")
        label_map = np.array(image).astype(np.int64)
    if palette is not None:
        palette = np.array(palette, np.uint8).reshape(-1, 3)
    return label_map, palette


def read_binary_mask(path: str) -> np.ndarray:
    """An (H, W) bool mask from a 0/1 or 0/255 PNG (any non-zero pixel is in)."""
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise IOError(f'could not read the mask {path}')
    return mask > 0


class CocoInstances:
    """A COCO-style instance json and its images.

    Args:
        ann_file: the json.
        img_dir: folder the images' ``file_name`` s are relative to.
    """

    def __init__(self, ann_file: str, img_dir: str):
        with open(ann_file) as f:
            self.coco = json.load(f)
        self.img_dir = img_dir
        self.anns_of: Dict[object, List[dict]] = {im['id']: [] for im in self.coco['images']}
        for ann in self.coco.get('annotations', []):
            if ann['image_id'] not in self.anns_of:
                raise ValueError(f'annotation {ann.get("id")} of {ann_file} refers to image '
                                 f'{ann["image_id"]}, which is not in "images"')
            self.anns_of[ann['image_id']].append(ann)

    def items(self) -> List[CoarseItem]:
        return [CoarseItem(key=str(im['id']), img_path=osp.join(self.img_dir, im['file_name']),
                           meta=dict(image=im)) for im in self.coco['images']]

    def refinable(self, ann: dict) -> bool:
        """Crowd regions and annotations without a segmentation pass through."""
        return not ann.get('iscrowd', 0) and bool(ann.get('segmentation'))

    def load(self, item: CoarseItem):
        """(N, H, W) bool masks of the image's refinable annotations and their ids."""
        image = item.meta['image']
        height, width = image['height'], image['width']
        anns = [a for a in self.anns_of[image['id']] if self.refinable(a)]
        masks = np.zeros((len(anns), height, width), bool)
        for index, ann in enumerate(anns):
            masks[index] = decode_segmentation(ann['segmentation'], height, width)
        return masks, [a['id'] for a in anns]


class LabelMaps:
    """A folder of PNG label maps and the folder of their images (same stems).

    Args:
        label_dir: the label maps (``*.png``).
        img_dir: the images.
    """

    def __init__(self, label_dir: str, img_dir: str):
        self.label_dir, self.img_dir = label_dir, img_dir
        self.paths = sorted(glob.glob(osp.join(label_dir, '*.png')))
        if not self.paths:
            raise FileNotFoundError(f'no PNG label maps in {label_dir}')

    def items(self) -> List[CoarseItem]:
        items = []
        for path in self.paths:
            stem = osp.splitext(osp.basename(path))[0]
            items.append(CoarseItem(key=stem, img_path=self._image(stem),
                                    meta=dict(label_path=path)))
        return items

    def _image(self, stem: str) -> Optional[str]:
        try:
            return find_image(self.img_dir, stem)
        except FileNotFoundError:
            return osp.join(self.img_dir, stem)  # reported when the item is refined

    def load(self, item: CoarseItem):
        """The (H, W) int64 label map and its palette (or None)."""
        return read_label_map(item.meta['label_path'])


class BinaryMasks:
    """Per image a folder of binary instance PNGs: ``<mask_dir>/<stem>/*.png``.

    Args:
        mask_dir: the folder of per-image folders.
        img_dir: the images.
    """

    def __init__(self, mask_dir: str, img_dir: str):
        self.mask_dir, self.img_dir = mask_dir, img_dir
        self.stems = sorted(d for d in os.listdir(mask_dir)
                            if osp.isdir(osp.join(mask_dir, d)))
        if not self.stems:
            raise FileNotFoundError(f'no per-image mask folders in {mask_dir}')

    def items(self) -> List[CoarseItem]:
        items = []
        for stem in self.stems:
            try:
                img_path = find_image(self.img_dir, stem)
            except FileNotFoundError:
                img_path = osp.join(self.img_dir, stem)
            names = sorted(osp.basename(p) for p in
                           glob.glob(osp.join(self.mask_dir, stem, '*.png')))
            items.append(CoarseItem(key=stem, img_path=img_path, meta=dict(names=names)))
        return items

    def load(self, item: CoarseItem):
        """(N, H, W) bool masks and their file names."""
        names = item.meta['names']
        masks = [read_binary_mask(osp.join(self.mask_dir, item.key, n)) for n in names]
        if len({m.shape for m in masks}) > 1:
            raise ValueError(f'the masks of {item.key} differ in size: '
                             f'{sorted({m.shape for m in masks})}')
        return (np.stack(masks) if masks else np.zeros((0, 0, 0), bool)), names

