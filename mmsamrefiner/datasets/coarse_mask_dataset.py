# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Datasets of coarse masks, one item per mask, for SAMRefiner++ (IoU adapter).

An item is one coarse instance mask of one image::

    dict(inputs=dict(img_path=str, coarse_mask=(H, W) bool tensor),
         data_samples=dict(img_path=str, instance_id=str,
                           gt_mask=(H, W) bool tensor or None))

The coarse masks are read through the collection layer
(:mod:`mmsamrefiner.mask_io.mask_collections`, opened for reading only), the
one ``tools/refine.py`` refines.  Images are not read here: the adapter model
encodes each image once and caches its embedding.  Ground truth is optional
and used only for validation metrics (SAMRefiner++ trains without labels).

* :class:`CocoCoarseMaskDataset`: a COCO-style instance json of coarse masks;
  ground truth from another COCO json of the same images, paired by
  annotation id where the ids agree, else greedily by IoU within the image.
* :class:`LabelMapCoarseMaskDataset`: PNG label maps, split into instances by
  split-then-merge (as :meth:`SAMRefiner.refine_semantic` does); ground-truth
  label maps are split the same way and paired by IoU within each class.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmsamrefiner.mask_io.coarse_masks import (
    CocoInstances,
    decode_segmentation,
    find_image,
    read_label_map,
)
from mmsamrefiner.mask_io.mask_collections import CocoCollection, LabelMapCollection
from mmsamrefiner.refiner.stm import split_then_merge
from mmsamrefiner.registry import DATASETS
from mmsamrefiner.utils.masks import match_masks


class CoarseMaskDataset:
    """Base: a list of (image, coarse mask, optional gt mask) items.

    Subclasses fill ``self.instances`` (one dict per item with ``img_path``
    and ``instance_id``) and implement :meth:`load_masks`.
    """

    def __init__(self) -> None:
        self.instances: List[dict] = []
        self.metainfo: dict = {}

    def __len__(self) -> int:
        return len(self.instances)

    def load_masks(self, index: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(H, W) bool coarse mask and (H, W) bool gt mask (or None)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} masks')
        info = self.instances[index]
        coarse, gt = self.load_masks(index % len(self))
        gt_tensor = None if gt is None else torch.from_numpy(np.ascontiguousarray(gt))
        return dict(
            inputs=dict(img_path=info['img_path'],
                        coarse_mask=torch.from_numpy(np.ascontiguousarray(coarse))),
            data_samples=dict(img_path=info['img_path'], instance_id=info['instance_id'],
                              gt_mask=gt_tensor))

    def __repr__(self) -> str:
        with_gt = sum(info.get('has_gt', False) for info in self.instances)
        return (f'{self.__class__.__name__}(masks={len(self)}, '
                f'images={len({i["img_path"] for i in self.instances})}, with_gt={with_gt})')


@DATASETS.register_module()
class CocoCoarseMaskDataset(CoarseMaskDataset):
    """Coarse instance masks from a COCO-style json, one item per annotation.

    Args:
        ann_file: json of coarse masks (polygons or RLE); crowd annotations,
            ones without a segmentation and ones of area 0 are left out.
        img_dir: folder of the images (``file_name`` relative to it).
        gt_ann_file: optional json of ground-truth masks of the same images
            (same image ids).
        data_root: prefix for the three paths above when they are relative.
    """

    def __init__(self, ann_file: str, img_dir: str, gt_ann_file: Optional[str] = None,
                 data_root: str = '') -> None:
        super().__init__()
        ann_file, img_dir = osp.join(data_root, ann_file), osp.join(data_root, img_dir)
        self.collection = CocoCollection.open(ann_file, img_dir)
        self.gt = CocoInstances(osp.join(data_root, gt_ann_file), img_dir) if gt_ann_file else None
        self.metainfo = dict(classes=tuple(c['name'] for c in
                                           self.collection.source.coco.get('categories', [])))
        for item in self.collection.items():
            image = item.meta['image']
            anns = [a for a in self.collection.annotations(item) if a.get('area', 1) > 0]
            gt_of = self._pair_with_gt(image, anns) if self.gt is not None else {}
            for ann in anns:
                gt_ann = gt_of.get(ann['id'])
                self.instances.append(dict(
                    img_path=item.img_path, instance_id=f'{image["id"]}/{ann["id"]}',
                    image=image, ann=ann, gt_ann=gt_ann, has_gt=gt_ann is not None))

    def _pair_with_gt(self, image: dict, anns: List[dict]) -> Dict[object, dict]:
        """coarse annotation id -> paired ground-truth annotation."""
        if image['id'] not in self.gt.anns_of:
            raise ValueError(f'image {image["id"]} ({image["file_name"]}) is not in the '
                             'ground-truth json')
        gt_anns = [a for a in self.gt.anns_of[image['id']] if self.gt.refinable(a)]
        by_id = {a['id']: a for a in gt_anns}
        if all(a['id'] in by_id for a in anns):
            return {a['id']: by_id[a['id']] for a in anns}
        height, width = image['height'], image['width']
        coarse = np.stack([decode_segmentation(a['segmentation'], height, width)
                           for a in anns]) if anns else np.zeros((0, height, width), bool)
        gt = np.stack([decode_segmentation(a['segmentation'], height, width)
                       for a in gt_anns]) if gt_anns else np.zeros((0, height, width), bool)
        return {anns[i]['id']: gt_anns[j] for i, j in match_masks(coarse, gt)}

    def load_masks(self, index: int):
        info = self.instances[index]
        height, width = info['image']['height'], info['image']['width']
        coarse = decode_segmentation(info['ann']['segmentation'], height, width)
        gt = None
        if info['gt_ann'] is not None:
            gt = decode_segmentation(info['gt_ann']['segmentation'], height, width)
        return coarse, gt


@DATASETS.register_module()
class LabelMapCoarseMaskDataset(CoarseMaskDataset):
    """Coarse semantic label maps split into instances (split-then-merge).

    The label maps are read once when the dataset is built, to list the
    instances; an item re-reads its map (the split is deterministic).

    Args:
        label_dir: PNG label maps (palette or grey), one per image.
        img_dir: the images, matched by file stem.
        gt_label_dir: optional ground-truth label maps (same stems).
        classes: class ids to split; default every id present except
            ``background`` and ``ignore_index``.
        background, ignore_index: as in :meth:`SAMRefiner.refine_semantic`.
        min_area: fragments smaller than this (pixels) are not instances.
        data_root: prefix for relative folders.
    """

    def __init__(self, label_dir: str, img_dir: str, gt_label_dir: Optional[str] = None,
                 classes: Optional[Sequence[int]] = None, background: int = 0,
                 ignore_index: Optional[int] = 255, min_area: int = 5,
                 data_root: str = '') -> None:
        super().__init__()
        self.collection = LabelMapCollection.open(osp.join(data_root, label_dir),
                                                  osp.join(data_root, img_dir))
        self.gt_label_dir = osp.join(data_root, gt_label_dir) if gt_label_dir else None
        self.classes = None if classes is None else [int(c) for c in classes]
        self.background, self.ignore_index, self.min_area = background, ignore_index, min_area
        items = self.collection.items()
        print_log(f'splitting {len(items)} label maps into instances', logger='current')
        progress = ProgressBar(len(items)) if len(items) > 50 else None
        for item in items:
            label_path = item.meta['label_path']
            masks, classes_of, gt_index = self._split(label_path)
            for index, cls in enumerate(classes_of):
                self.instances.append(dict(
                    img_path=find_image(self.collection.source.img_dir, item.name),
                    instance_id=f'{item.key}/{index}', label_path=label_path,
                    index=index, cls=int(cls), gt_index=gt_index.get(index),
                    has_gt=index in gt_index))
            if progress is not None:
                progress.update()

    def _classes(self, label_map: np.ndarray) -> List[int]:
        if self.classes is not None:
            return self.classes
        skip = {self.background, self.ignore_index}
        return [int(c) for c in np.unique(label_map) if int(c) not in skip]

    def _gt_path(self, label_path: str) -> str:
        return osp.join(self.gt_label_dir, osp.basename(label_path))

    def _split(self, label_path: str):
        """Instances of a label map, their classes, and instance -> gt instance."""
        label_map, _ = read_label_map(label_path)
        masks, classes = split_then_merge(label_map, self._classes(label_map), self.min_area)
        gt_index = {}
        if self.gt_label_dir is not None:
            gt_masks, gt_classes = self._split_gt(label_path, label_map.shape)
            for cls in np.unique(classes):
                mine, theirs = np.flatnonzero(classes == cls), np.flatnonzero(gt_classes == cls)
                for i, j in match_masks(masks[mine], gt_masks[theirs]):
                    gt_index[int(mine[i])] = int(theirs[j])
        return masks, classes, gt_index

    def _split_gt(self, label_path: str, shape) -> Tuple[np.ndarray, np.ndarray]:
        gt_path = self._gt_path(label_path)
        if not osp.exists(gt_path):
            raise FileNotFoundError(f'no ground-truth label map {gt_path} for {label_path}')
        gt_map, _ = read_label_map(gt_path)
        if gt_map.shape != tuple(shape):
            raise ValueError(f'{gt_path} is {gt_map.shape}, its coarse map {tuple(shape)}')
        return split_then_merge(gt_map, self._classes(gt_map), self.min_area)

    def load_masks(self, index: int):
        info = self.instances[index]
        label_map, _ = read_label_map(info['label_path'])
        masks, _ = split_then_merge(label_map, self._classes(label_map), self.min_area)
        gt = None
        if info['gt_index'] is not None:
            gt_masks, _ = self._split_gt(info['label_path'], label_map.shape)
            gt = gt_masks[info['gt_index']]
        return masks[info['index']], gt
