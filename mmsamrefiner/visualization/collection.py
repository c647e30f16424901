# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``tools/refine.py --show-dir``: coarse | refined overlays per image."""
import os
import os.path as osp

import cv2
import numpy as np

from mmsamrefiner.io.coarse_masks import (CocoInstances, LabelMaps,
                                          read_binary_mask, read_label_map)
from mmsamrefiner.refiner.inputs import load_rgb_image
from .overlay import draw_masks, side_by_side


def _class_masks(label_map: np.ndarray, ignore_index: int, background: int) -> np.ndarray:
    classes = [c for c in np.unique(label_map) if c not in (ignore_index, background)]
    if not classes:
        return np.zeros((0, ) + label_map.shape, bool)
    return np.stack([label_map == c for c in classes])


def show_collection(args, source) -> None:
    """Write ``<show_dir>/<key>.jpg``: the image with coarse and refined masks."""
    os.makedirs(args.show_dir, exist_ok=True)
    refined_coco = None
    if isinstance(source, CocoInstances):
        refined_coco = CocoInstances(args.out, args.img_dir)
    for item in source.items():
        try:
            image = load_rgb_image(item.img_path)
        except (IOError, OSError, ValueError):
            continue  # reported in the summary already
        if isinstance(source, CocoInstances):
            coarse, _ = source.load(item)
            refined, _ = refined_coco.load(item)
        elif isinstance(source, LabelMaps):
            coarse_map, _ = source.load(item)
            refined_map, _ = read_label_map(osp.join(args.out, item.key + '.png'))
            coarse = _class_masks(coarse_map, args.ignore_index, args.background)
            refined = _class_masks(refined_map, args.ignore_index, args.background)
        else:
            coarse, names = source.load(item)
            refined = np.stack([read_binary_mask(osp.join(args.out, item.key, n))
                                for n in names]) if names else coarse
        panel = side_by_side([draw_masks(image, coarse, 'coarse'),
                              draw_masks(image, refined, 'refined')])
        cv2.imwrite(osp.join(args.show_dir, item.key + '.jpg'), panel[..., ::-1])
