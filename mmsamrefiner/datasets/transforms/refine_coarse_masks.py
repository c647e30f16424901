# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``RefineCoarseMasks``: refine coarse annotation masks inside a data pipeline."""
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmsamrefiner.io import MaskCache, content_key
from mmsamrefiner.registry import TRANSFORMS, build_in_scope, register_also_in_root


def masks_to_polygons(masks: np.ndarray) -> list:
    """(N, H, W) bool -> per mask a list of flat ``[x0, y0, x1, y1, ...]``
    polygons: the outer contours of its parts (holes are filled); parts too small
    for a polygon (under 3 points) are dropped; an empty mask gets one zero-area
    polygon, mmdet's convention for an instance with nothing left (as after a
    crop)."""
    polygons = []
    for mask in masks:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        parts = [c.reshape(-1).astype(np.float64) for c in contours if len(c) >= 3]
        polygons.append(parts or [np.zeros(6)])
    return polygons


@register_also_in_root(TRANSFORMS)
class RefineCoarseMasks(BaseTransform):
    """Refine coarse masks of an annotation with SAMRefiner, on the fly.

    Put it right after ``LoadAnnotations`` and before geometric augmentation:
    masks and image must be in the original image frame.

    * mmdet: each mask of ``gt_masks`` (``BitmapMasks`` or ``PolygonMasks``) is
      refined against ``img``.  The result is ``BitmapMasks``, or with
      ``mask_format='polygon'`` a ``PolygonMasks`` of the refined masks' outer
      contours (holes filled, as COCO polygons cannot hold them).  ``gt_bboxes``
      stay the annotation's unless ``update_bboxes=True``.
    * mmseg: ``gt_seg_map`` is refined through split-then-merge; ``ignore_index``
      pixels are kept.

    Required Keys: ``img`` ((H, W, 3) uint8, channel order ``channel_order``,
    BGR for MM loaders), and ``gt_masks`` or ``gt_seg_map``.
    Modified Keys: ``gt_masks`` (and ``gt_bboxes`` with ``update_bboxes``), or
    ``gt_seg_map``.  Added Keys: ``coarse_masks`` / ``coarse_seg_map`` when
    ``keep_coarse``.

    The SAM is built lazily, once per process: each DataLoader worker builds
    its own copy on ``device``.  With ``device='cuda'`` and workers, set
    ``multiprocessing_context='spawn'`` (or ``persistent_workers=True`` and
    few workers) in the dataloader: CUDA cannot be used in forked workers, and
    every worker holds a SAM in GPU memory.

    ``cache_dir`` stores refined masks keyed by the image pixels, the coarse
    masks and the settings, so epochs after the first read a file instead of
    running SAM; writes are atomic, so workers may share the directory.

    A sample that fails to refine keeps its coarse masks, is counted
    (``num_failed``) and logged, and training goes on, unless ``strict=True``.

    Args:
        refiner (dict): the ``SAMRefiner`` config (a built module also works,
            but then the cache key cannot name the checkpoint).
        device (str): where SAM runs in each process.
        cache_dir (str, optional): refined-mask cache directory.
        strict (bool): raise instead of keeping the coarse masks on failure.
        mask_format (str): mmdet output, ``'bitmap'`` or ``'polygon'``.
        update_bboxes (bool): mmdet: recompute ``gt_bboxes`` from refined masks.
        keep_coarse (bool): keep the input as ``coarse_masks`` / ``coarse_seg_map``.
        classes, background, ignore_index: mmseg, as in
            :meth:`SAMRefiner.refine_semantic`.
        channel_order (str): channel order of ``img``.
    """

    def __init__(self,
                 refiner: Union[dict, torch.nn.Module],
                 device: str = 'cpu',
                 cache_dir: Optional[str] = None,
                 strict: bool = False,
                 mask_format: str = 'bitmap',
                 update_bboxes: bool = False,
                 keep_coarse: bool = False,
                 classes: Optional[Sequence[int]] = None,
                 background: int = 0,
                 ignore_index: int = 255,
                 channel_order: str = 'bgr') -> None:
        if mask_format not in ('bitmap', 'polygon'):
            raise ValueError(f"mask_format must be 'bitmap' or 'polygon', got {mask_format!r}")
        if channel_order not in ('rgb', 'bgr'):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.refiner_cfg = refiner
        self.device = device
        self.cache = MaskCache(cache_dir) if cache_dir else None
        self.strict = strict
        self.mask_format = mask_format
        self.update_bboxes = update_bboxes
        self.keep_coarse = keep_coarse
        self.classes = None if classes is None else tuple(classes)
        self.background = background
        self.ignore_index = ignore_index
        self.channel_order = channel_order
        self._refiner = refiner if isinstance(refiner, torch.nn.Module) else None
        self._settings = None  # the cache key's settings part, built on first use
        self.num_refined = self.num_cached = self.num_failed = 0

    # -- the refiner, once per process ----------------------------------------
    @property
    def refiner(self):
        """The SAMRefiner, built on first use in this process."""
        if self._refiner is None:
            self._refiner = build_in_scope(self.refiner_cfg).to(self.device).eval()
        return self._refiner

    def __getstate__(self):
        state = self.__dict__.copy()
        if not isinstance(self.refiner_cfg, torch.nn.Module):
            state['_refiner'] = None  # workers started by spawn build their own
        return state

    def settings(self) -> str:
        """What the refined masks depend on besides the inputs (the cache key's part)."""
        refiner = (self.refiner_cfg if isinstance(self.refiner_cfg, dict)
                   else repr(self.refiner_cfg))
        return repr((refiner, self.classes, self.background, self.ignore_index,
                     self.channel_order))

    # -- transform -------------------------------------------------------------
    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError('RefineCoarseMasks needs "img": put it after LoadImageFromFile')
        if 'gt_masks' in results:
            refine = self._refine_instances
            if self.keep_coarse:
                results['coarse_masks'] = results['gt_masks']
        elif 'gt_seg_map' in results:
            refine = self._refine_label_map
            if self.keep_coarse:
                results['coarse_seg_map'] = results['gt_seg_map']
        else:
            raise KeyError('RefineCoarseMasks needs "gt_masks" (mmdet, LoadAnnotations with '
                           'with_mask=True) or "gt_seg_map" (mmseg LoadAnnotations)')
        try:
            refine(results)
        except Exception as error:  # noqa: BLE001 - a bad sample must not stop training
            if self.strict:
                raise
            self.num_failed += 1
            print_log(f'RefineCoarseMasks: kept the coarse masks of '
                      f'{results.get("img_path", "a sample")} ({type(error).__name__}: '
                      f'{error}); {self.num_failed} failed so far in this process',
                      logger='current', level=30)
        return results

    def _cached(self, key_arrays, compute):
        """``compute()``'s array, through the cache when there is one."""
        if self.cache is None:
            self.num_refined += 1
            return compute()
        if self._settings is None:
            self._settings = self.settings()
        key = content_key(self._settings, *key_arrays)
        entry = self.cache.get(key)
        if entry is not None:
            self.num_cached += 1
            return entry['refined']
        refined = compute()
        self.cache.put(key, refined=refined)
        self.num_refined += 1
        return refined

    def _refine_instances(self, results: dict) -> None:
        from mmdet.structures.mask import BitmapMasks, PolygonMasks
        gt_masks = results['gt_masks']
        image = results['img']
        height, width = image.shape[:2]
        coarse = gt_masks.to_ndarray().astype(bool)
        if coarse.shape[1:] != (height, width):
            raise ValueError(f'gt_masks are {coarse.shape[1:]} but img is {(height, width)}: '
                             'put RefineCoarseMasks before any resize or crop')
        if len(coarse) == 0:
            return
        refined = self._cached(
            (image, np.packbits(coarse)),
            lambda: self.refiner.refine(image, coarse, channel_order=self.channel_order).masks)
        refined = refined.astype(bool).reshape(coarse.shape)
        if self.mask_format == 'polygon' and isinstance(gt_masks, PolygonMasks):
            results['gt_masks'] = PolygonMasks(masks_to_polygons(refined), height, width)
        else:
            results['gt_masks'] = BitmapMasks(refined.astype(np.uint8), height, width)
        if self.update_bboxes and 'gt_bboxes' in results:
            boxes = results['gt_masks'].get_bboxes(type(results['gt_bboxes']))
            results['gt_bboxes'] = boxes.to(results['gt_bboxes'].tensor.dtype) \
                if hasattr(boxes, 'to') else boxes

    def _refine_label_map(self, results: dict) -> None:
        image = results['img']
        coarse = results['gt_seg_map']
        if coarse.shape != image.shape[:2]:
            raise ValueError(f'gt_seg_map is {coarse.shape} but img is {image.shape[:2]}: '
                             'put RefineCoarseMasks before any resize or crop')
        refined = self._cached(
            (image, coarse),
            lambda: self.refiner.refine_semantic(
                image, coarse, ignore_index=self.ignore_index, classes=self.classes,
                background=self.background, channel_order=self.channel_order))
        results['gt_seg_map'] = refined.astype(coarse.dtype)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(refiner={self.refiner_cfg!r}, '
                f'device={self.device!r}, cache_dir='
                f'{self.cache.cache_dir if self.cache else None!r}, strict={self.strict}, '
                f'mask_format={self.mask_format!r}, update_bboxes={self.update_bboxes}, '
                f'classes={self.classes}, background={self.background}, '
                f'ignore_index={self.ignore_index}, channel_order={self.channel_order!r})')
