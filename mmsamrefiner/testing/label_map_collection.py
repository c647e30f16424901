# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Generated scenes written as an mmseg-style dataset (images + PNG label
maps); the COCO-format one is
:func:`mmsamrefiner.synthetic.coco_collection.write_coco_collection`."""
import os
import os.path as osp

import cv2
import numpy as np

from mmsamrefiner.synthetic.defects import make_coarse_masks
from mmsamrefiner.synthetic.scenes import make_scene


def write_label_map_collection(root: str, num_images: int = 2, coarse: bool = False,
                               seed: int = 0, height: int = 96, width: int = 128,
                               num_objects: int = 3) -> str:
    """``root/img_dir/NNNN.png`` and ``root/ann_dir/NNNN.png``: label maps with
    0 = background and ``k`` = ``SHAPE_KINDS[k - 1]``
    (:data:`mmsamrefiner.synthetic.scenes.SHAPE_KINDS`).  Returns ``root``."""
    for sub in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for index in range(num_images):
        scene = make_scene(seed=seed + index, height=height, width=width,
                           num_objects=num_objects)
        masks = make_coarse_masks(scene.masks, seed=seed + index) if coarse else scene.masks
        label_map = np.zeros((height, width), np.uint8)
        for mask, label in zip(masks, scene.labels):
            label_map[mask] = label
        cv2.imwrite(osp.join(root, 'img_dir', f'{index:04d}.png'), scene.image[..., ::-1])
        cv2.imwrite(osp.join(root, 'ann_dir', f'{index:04d}.png'), label_map)
    return root
