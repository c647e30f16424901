# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``tools/refine.py --show-dir``: coarse | refined overlays per image."""
import os
import os.path as osp
from typing import Optional

import cv2
import numpy as np

from mmsamrefiner.mask_io.coarse_masks import (CocoInstances, LabelMaps,
                                          read_binary_mask, read_label_map)
from mmsamrefiner.mask_io.left_out import LeftOut
from mmsamrefiner.refiner.inputs import load_rgb_image
from .overlay import draw_masks, side_by_side


def _class_masks(label_map: np.ndarray, ignore_index: int, background: int) -> np.ndarray:
    classes = [c for c in np.unique(label_map) if c not in (ignore_index, background)]
    if not classes:
        return np.zeros((0, ) + label_map.shape, bool)
    return np.stack([label_map == c for c in classes])


def show_collection(args, source, left_out: Optional[LeftOut] = None) -> LeftOut:
    """Write ``<show_dir>/<key>.jpg``: the image with coarse and refined masks.

    Images in ``left_out`` (e.g. ``LeftOut(records)``: those whose refinement
    failed) are not drawn, nor are images whose picture or masks cannot be
    read or decoded: those are added to ``left_out``, which is returned.
    """
    if left_out is None:
        left_out = LeftOut()
    os.makedirs(args.show_dir, exist_ok=True)
    refined_coco = None
    if isinstance(source, CocoInstances):
        refined_coco = CocoInstances(args.out, args.img_dir)
    for item in source.items():
        overlay = osp.join(args.show_dir, item.key + '.jpg')
        if item.key in left_out:
            _remove_stale(overlay)
            continue
        which = 'image'
        try:
            image = load_rgb_image(item.img_path)
            masks = {}
            for which in ('coarse', 'refined'):
                masks[which] = _load_masks(args, source, refined_coco, item, which)
                if len(masks[which]) and masks[which].shape[1:] != image.shape[:2]:
                    raise ValueError(f'the masks are {masks[which].shape[1]}x'
                                     f'{masks[which].shape[2]}, the image '
                                     f'{image.shape[0]}x{image.shape[1]}')
        except Exception as error:  # noqa: BLE001 - this image is left out, with the reason
            left_out.add(item.key, f'{which}: {type(error).__name__}: {error}')
            _remove_stale(overlay)
            continue
        panel = side_by_side([draw_masks(image, masks['coarse'], 'coarse'),
                              draw_masks(image, masks['refined'], 'refined')])
        cv2.imwrite(overlay, panel[..., ::-1])
    return left_out


def _remove_stale(overlay: str) -> None:
    """An earlier run's overlay of an image left out now would mislead."""
    try:
        os.remove(overlay)
    except FileNotFoundError:
        pass


def _load_masks(args, source, refined_coco, item, which: str) -> np.ndarray:
    """(N, H, W) bool ``'coarse'`` or ``'refined'`` masks of ``item``."""
    if isinstance(source, CocoInstances):
        return (source if which == 'coarse' else refined_coco).load(item)[0]
    if isinstance(source, LabelMaps):
        label_map = (source.load(item)[0] if which == 'coarse' else
                     read_label_map(osp.join(args.out, item.key + '.png'))[0])
        return _class_masks(label_map, args.ignore_index, args.background)
    if which == 'coarse':
        return source.load(item)[0]
    names = item.meta['names']
    if not names:
        return np.zeros((0, 0, 0), bool)
    masks = [read_binary_mask(osp.join(args.out, item.key, n)) for n in names]
    if len({m.shape for m in masks}) > 1:
        raise ValueError(f'the masks differ in size: {sorted({m.shape for m in masks})}')
    return np.stack(masks)
