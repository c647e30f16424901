# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Generated scenes written as a dataset: a COCO-format instance collection
(images + json).  The mmseg-style one (images + PNG label maps) is
:func:`mmsamrefiner.testing.write_label_map_collection`."""
import json
import os
import os.path as osp
from typing import Callable, Optional

import cv2
import numpy as np

from .defects import make_coarse_masks
from .scenes import SHAPE_KINDS, Scene, make_scene


def write_coco_collection(root: str, num_images: int = 2, coarse: bool = False,
                          seed: int = 0, height: int = 96, width: int = 128,
                          num_objects: int = 3, defect: Optional[str] = None,
                          make: Optional[Callable[[int], Scene]] = None) -> str:
    """``root/images/NNNN.png`` and ``root/instances.json`` (polygon masks;
    ``coarse=True`` spoils each mask with a defect first: ``defect``, or one
    drawn at random per mask).  Image ``i`` is the scene of seed ``seed + i``:
    ``make(seed)`` when given (e.g. a
    :func:`~mmsamrefiner.synthetic.scenes.make_crowded_scene`), else
    :func:`make_scene` of ``height`` x ``width`` with ``num_objects``.  Image
    ids start at 1, categories are :data:`SHAPE_KINDS`.  Returns the json
    path."""
    from pycocotools import mask as mask_utils
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        scene = make(seed + index) if make is not None else make_scene(
            seed=seed + index, height=height, width=width, num_objects=num_objects)
        height, width = scene.image.shape[:2]
        masks = (make_coarse_masks(scene.masks, seed=seed + index, defect=defect)
                 if coarse else scene.masks)
        file_name = f'{index:04d}.png'
        cv2.imwrite(osp.join(root, 'images', file_name), scene.image[..., ::-1])
        images.append(dict(id=index + 1, file_name=file_name, height=height, width=width))
        for mask, label in zip(masks, scene.labels):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            polygons = [c.reshape(-1).tolist() for c in contours if len(c) >= 3]
            if not polygons:
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append(dict(
                id=len(annotations) + 1, image_id=index + 1, category_id=int(label),
                segmentation=polygons, area=float(mask_utils.area(rle)),
                bbox=mask_utils.toBbox(rle).tolist(), iscrowd=0))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(SHAPE_KINDS)]
    ann_file = osp.join(root, 'instances.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return ann_file
