# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Tiny datasets written to a temp dir: COCO-format instances (mmdet) and
image + PNG label-map pairs (mmseg), from generated scenes."""
import json
import os
import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS
from mmsamrefiner.synthetic.defects import make_coarse_masks

HEIGHT, WIDTH = 96, 128


def make_coco_dataset(root, num_images: int = 2, coarse: bool = False, seed: int = 0):
    """Images under ``root/images`` and ``root/instances.json`` (polygon
    masks; ``coarse=True`` spoils them first).  Returns the ann file path."""
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        scene = make_scene(seed=seed + index, height=HEIGHT, width=WIDTH, num_objects=3)
        masks = make_coarse_masks(scene.masks, seed=index) if coarse else scene.masks
        file_name = f'{index:04d}.png'
        cv2.imwrite(osp.join(root, 'images', file_name), scene.image[..., ::-1])
        images.append(dict(id=index + 1, file_name=file_name, height=HEIGHT, width=WIDTH))
        for mask, label in zip(masks, scene.labels):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            polygons = [c.reshape(-1).tolist() for c in contours if len(c) >= 3]
            if not polygons:
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            annotations.append(dict(
                id=len(annotations) + 1, image_id=index + 1, category_id=int(label),
                segmentation=polygons, area=float(mask_utils.area(rle)),
                bbox=[x, y, w, h], iscrowd=0))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(SHAPE_KINDS)]
    ann_file = osp.join(root, 'instances.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return ann_file


def make_seg_dataset(root, num_images: int = 2, coarse: bool = False, seed: int = 0):
    """``root/img_dir/*.png`` and ``root/ann_dir/*.png``: label maps with 0 =
    background and class ``k`` = shape kind ``k``; ``coarse=True`` spoils the
    objects first."""
    for sub in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for index in range(num_images):
        scene = make_scene(seed=seed + index, height=HEIGHT, width=WIDTH, num_objects=3)
        masks = make_coarse_masks(scene.masks, seed=index) if coarse else scene.masks
        label_map = np.zeros((HEIGHT, WIDTH), np.uint8)
        for mask, label in zip(masks, scene.labels):
            label_map[mask] = label
        cv2.imwrite(osp.join(root, 'img_dir', f'{index:04d}.png'), scene.image[..., ::-1])
        cv2.imwrite(osp.join(root, 'ann_dir', f'{index:04d}.png'), label_map)
    return root
