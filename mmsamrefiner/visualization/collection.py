# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``tools/refine.py --show-dir``: coarse | refined overlays per image."""
import os
import os.path as osp
from typing import Optional

import cv2

from mmsamrefiner.mask_io.coarse_masks import READ_ERRORS
from mmsamrefiner.mask_io.left_out import LeftOut
from mmsamrefiner.mask_io.records import writing
from mmsamrefiner.refiner.inputs import load_rgb_image
from mmsamrefiner.utils.atomic import atomic_write_bytes

from .overlay import draw_masks, side_by_side


def show_collection(collection, show_dir: str, left_out: Optional[LeftOut] = None,
                    ignore_index: int = 255, background: int = 0) -> LeftOut:
    """Write ``<show_dir>/<key>.jpg``: the image with coarse and refined masks
    of ``collection`` (a :class:`~mmsamrefiner.mask_io.mask_collections.
    MaskCollection`, which gives the masks: :meth:`overlay_masks`; label maps
    are drawn as class masks, ``ignore_index`` and ``background`` left out).

    Images in ``left_out`` (e.g. ``LeftOut(records)``: those whose refinement
    failed) are not drawn, nor are images whose picture or masks cannot be
    read or decoded: those are added to ``left_out``, which is returned.
    An overlay that cannot be written raises
    :class:`~mmsamrefiner.mask_io.records.OutputWriteError`.
    """
    if left_out is None:
        left_out = LeftOut()
    os.makedirs(show_dir, exist_ok=True)
    collection.prepare_overlays()
    for item in collection.items():
        overlay = osp.join(show_dir, item.key + '.jpg')
        if item.key in left_out:
            _remove_stale(overlay)
            continue
        which = 'image'
        try:
            image = load_rgb_image(item.img_path)
            masks = {}
            for which in ('coarse', 'refined'):
                masks[which] = collection.overlay_masks(item, which, ignore_index=ignore_index,
                                                        background=background)
                if len(masks[which]) and masks[which].shape[1:] != image.shape[:2]:
                    raise ValueError(f'the masks are {masks[which].shape[1]}x'
                                     f'{masks[which].shape[2]}, the image '
                                     f'{image.shape[0]}x{image.shape[1]}')
        except READ_ERRORS as error:  # this image is left out, with the reason
            left_out.add(item.key, f'{which}: {type(error).__name__}: {error}')
            _remove_stale(overlay)
            continue
        panel = side_by_side([draw_masks(image, masks['coarse'], 'coarse'),
                              draw_masks(image, masks['refined'], 'refined')])
        _, encoded = cv2.imencode('.jpg', panel[..., ::-1])
        with writing(overlay):
            atomic_write_bytes(overlay, encoded.tobytes())
    return left_out


def _remove_stale(overlay: str) -> None:
    """An earlier run's overlay of an image left out now would mislead."""
    try:
        os.remove(overlay)
    except FileNotFoundError:
        pass
