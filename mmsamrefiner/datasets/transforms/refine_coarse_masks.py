# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``RefineCoarseMasks``: refine coarse annotation masks inside a data pipeline."""
import logging
import multiprocessing.util
import os
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.logging import MessageHub, print_log
from torch.utils.data import get_worker_info

from mmsamrefiner.refiner.inputs import check_channel_order
from mmsamrefiner.refiner.refiner import fingerprint_of
from mmsamrefiner.registry import TRANSFORMS, build_in_scope
from mmsamrefiner.runner_checkpoints import install as install_runner_checkpoints
from mmsamrefiner.utils.mask_cache import MaskCache, content_key


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


class _Tally:
    """One process's counts of :class:`RefineCoarseMasks` outcomes, and its log
    lines.  ``total``: the process's life; ``epoch``: its current epoch (in a
    DataLoader worker, which cannot see epochs, the same as ``total``)."""

    KINDS = ('refined', 'cached', 'failed', 'empty')

    def __init__(self) -> None:
        self.pid = os.getpid()
        info = get_worker_info()
        self.in_worker = info is not None
        self.where = (f'DataLoader worker {info.id} of {info.num_workers} (pid {self.pid})'
                      if info is not None else f'the main process (pid {self.pid})')
        self.total = dict.fromkeys(self.KINDS, 0)
        self.epoch = dict.fromkeys(self.KINDS, 0)
        self.epoch_id: Optional[int] = None  # the runner's epoch (main process)
        self.first_error: Optional[str] = None

    def start_sample(self) -> None:
        """In the main process, close the epoch when the runner started another."""
        if self.in_worker:
            return  # a worker's copy of the runner's state is stale
        epoch = MessageHub.get_current_instance().get_info('epoch')
        if epoch != self.epoch_id:
            if self.epoch_samples():
                self.log(f'totals of {self._epoch_name()} in {self.where}')
            self.epoch = dict.fromkeys(self.KINDS, 0)
            self.epoch_id = epoch

    def add(self, outcome: str) -> None:
        self.total[outcome] += 1
        self.epoch[outcome] += 1

    def epoch_samples(self) -> int:
        return sum(self.epoch.values())

    def _epoch_name(self) -> str:
        return 'the run' if self.epoch_id is None else f'epoch {self.epoch_id + 1}'

    def log(self, what: str) -> None:
        counts = self.epoch
        text = (f'RefineCoarseMasks {what}: {self.epoch_samples()} samples: '
                f'{counts["refined"]} refined, {counts["cached"]} from cache, '
                f'{counts["failed"]} failed')
        if counts['empty']:
            text += f', {counts["empty"]} without masks'
        print_log(text, logger='current',
                  level=logging.WARNING if counts['failed'] else logging.INFO)

    def log_so_far(self) -> None:
        if self.in_worker:
            self.log(f'so far in {self.where}')
        else:
            self.log(f'so far in {self._epoch_name()} in {self.where}')

    def log_end(self) -> None:
        """At the process's end (or the transform's): the last epoch's totals."""
        if self.pid != os.getpid() or not self.epoch_samples():
            return
        try:
            if self.in_worker:
                self.log(f'totals of {self.where}, at its end (with persistent_workers=False: '
                         "this worker's epoch)")
            else:
                self.log(f'totals of {self._epoch_name()} in {self.where}')
        except Exception:  # noqa: BLE001
            # Broad on purpose: this runs from a finalizer at the process's
            # exit, when logging's handlers and streams may already be closed
            # (ValueError, OSError, AttributeError, ...); the totals are lost,
            # the exit must not fail.
            pass


@TRANSFORMS.register_module()
class RefineCoarseMasks(BaseTransform):
    """Refine coarse masks of an annotation with SAMRefiner, on the fly.

    Put it right after ``LoadAnnotations`` and before geometric augmentation:
    masks and image must be in the original image frame.

    * mmdet: each mask of ``gt_masks`` (``BitmapMasks`` or ``PolygonMasks``) is
      refined against ``img``.  The result is ``BitmapMasks``, or with
      ``mask_format='polygon'`` a ``PolygonMasks`` of the refined masks' outer
      contours (holes filled, as COCO polygons cannot hold them), whichever
      of the two the input was.  ``gt_bboxes``
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
    ``multiprocessing_context='spawn'`` in the dataloader (CUDA cannot be used
    in forked workers, and ``persistent_workers`` does not change how they are
    started), and keep the workers few: every worker holds a SAM in GPU
    memory.

    ``cache_dir`` stores refined masks keyed by the image pixels, the coarse
    masks and the settings, which include :meth:`SAMRefiner.fingerprint` (the
    content of SAM's weights, not the checkpoint's path: a retrained checkpoint
    at the same path misses), so epochs after the first read a file instead of
    running SAM; writes are atomic, so workers may share the directory.  The
    key needs the SAM, so each process builds it even when every sample is a
    cache hit.  Entries hold bit-packed, deflated masks (a few KB an image).

    **Counts and log.**  Counts live in each process running the transform:
    each DataLoader worker has its own copy (the main process's with
    ``num_workers=0``).  ``num_refined`` (SAM ran), ``num_cached`` (served from
    the cache), ``num_failed`` (kept the coarse masks) and ``num_empty`` (no
    masks to refine) count the process's life.  Totals are logged through
    mmengine's ``print_log`` with the current logger, labelled with the worker:

    * at the end of the process's epoch: a DataLoader worker logs its totals
      when it exits, which with ``persistent_workers=False`` (the DataLoader
      default) is the end of each epoch, so these lines are per-worker epoch
      totals; persistent workers live the whole run and log at its end.  In
      the main process (``num_workers=0``) an epoch ends when the runner's
      epoch (mmengine's ``MessageHub`` ``'epoch'``) changes, and the totals of
      the last epoch are logged when the transform is freed or at exit;
    * every ``log_interval`` samples the process handled (its epoch so far), so
      persistent workers and long epochs report too.

    **Failures.**  A sample that fails to refine keeps its coarse masks, is
    counted (``num_failed``) and logged with its ``img_path``, and the sample
    goes on through the pipeline, unless ``strict=True`` (raise at once).  But
    when the first ``fail_fast_after`` samples a process tried all failed (a
    pipeline mistake such as ``LoadImageFromFile(to_float32=True)``, which gives
    float images, or a resize before this transform), it raises a
    ``RuntimeError`` naming the first error and what to fix rather than train
    a whole run on coarse masks; once one sample of the process succeeded, it
    never does.  A process that handles fewer samples than that only logs.
    An unreadable image never reaches this transform: mmcv's
    ``LoadImageFromFile`` raises first, which stops the run (with
    ``LoadImageFromFile(ignore_empty=True)`` a missing file makes mmengine's
    dataset draw another sample instead).

    Args:
        refiner (dict): the ``SAMRefiner`` config (a built module also works;
            the cache key holds its :meth:`~SAMRefiner.fingerprint` either way).
        device (str): where SAM runs in each process.
        cache_dir (str, optional): refined-mask cache directory.
        strict (bool): raise instead of keeping the coarse masks on failure.
        fail_fast_after (int): raise when this many samples, the first a
            process tried, all failed (8); 0 or None: never (only log).
        log_interval (int): log a process's totals every this many samples it
            handled (500); 0 or None: only at the end of its epochs.
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
                 channel_order: str = 'bgr',
                 fail_fast_after: Optional[int] = 8,
                 log_interval: Optional[int] = 500) -> None:
        if mask_format not in ('bitmap', 'polygon'):
            raise ValueError(f"mask_format must be 'bitmap' or 'polygon', got {mask_format!r}")
        check_channel_order(channel_order)
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
        self.fail_fast_after = fail_fast_after or 0
        self.log_interval = log_interval or 0
        self._refiner = refiner if isinstance(refiner, torch.nn.Module) else None
        self._settings = None  # the cache key's settings part, built on first use
        self._tally: Optional[_Tally] = None  # this process's counts, made on first use
        install_runner_checkpoints(force_import=True)  # before the Runner resumes

    # -- the refiner, once per process ----------------------------------------
    @property
    def refiner(self):
        """The SAMRefiner, built on first use in this process."""
        if self._refiner is None:
            self._refiner = build_in_scope(self.refiner_cfg).to(self.device).eval()
        return self._refiner

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_tally'] = None  # counts are per process
        if not isinstance(self.refiner_cfg, torch.nn.Module):
            state['_refiner'] = None  # workers started by spawn build their own
            state['_settings'] = None  # ... and fingerprint it
        return state

    def settings(self) -> str:
        """What the refined masks depend on besides the inputs (the cache key's
        part): the refiner's fingerprint (settings and the content of SAM's
        weights: :func:`~mmsamrefiner.refiner.refiner.fingerprint_of`;
        builds the refiner) and the label-map options."""
        return repr(('RefineCoarseMasks', fingerprint_of(self.refiner), self.classes,
                     self.background, self.ignore_index, self.channel_order))

    # -- counts, per process -----------------------------------------------------
    @property
    def tally(self) -> '_Tally':
        """This process's counts (a forked or spawned worker starts its own)."""
        if self._tally is None or self._tally.pid != os.getpid():
            self._tally = _Tally()
            # log the totals when the process ends (a DataLoader worker: at the
            # end of its epoch unless persistent) or this transform is freed;
            # the callback holds the counts, not the transform
            multiprocessing.util.Finalize(self, self._tally.log_end, exitpriority=0)
        return self._tally

    num_refined = property(lambda self: self.tally.total['refined'],
                           doc='Samples this process ran SAM on.')
    num_cached = property(lambda self: self.tally.total['cached'],
                          doc='Samples this process served from the cache.')
    num_failed = property(lambda self: self.tally.total['failed'],
                          doc='Samples this process left coarse after an error.')
    num_empty = property(lambda self: self.tally.total['empty'],
                         doc='Samples this process got without masks to refine.')

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
        tally = self.tally
        tally.start_sample()
        try:
            image = results['img']
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
                raise TypeError(
                    f'img is {getattr(image, "dtype", type(image).__name__)}, not uint8 '
                    '(LoadImageFromFile(to_float32=True) gives float32 images)')
            outcome = refine(results)
        except Exception as error:  # noqa: BLE001
            # Broad on purpose: whatever one sample raises (bad pixels, masks
            # of another size, an error of SAM on them) keeps its coarse masks
            # and is counted and logged, so one bad sample does not stop
            # training; strict=True re-raises, and fail_fast_after stops a
            # pipeline whose every sample fails.
            if self.strict:
                raise
            self._failed(tally, results, error)
        else:
            tally.add(outcome)
        if self.log_interval and tally.epoch_samples() % self.log_interval == 0:
            tally.log_so_far()
        return results

    def _failed(self, tally: '_Tally', results: dict, error: Exception) -> None:
        img_path = results.get('img_path', 'a sample')
        tally.add('failed')
        if tally.first_error is None:
            tally.first_error = f'on {img_path}: {type(error).__name__}: {error}'
        print_log(f'RefineCoarseMasks: kept the coarse masks of {img_path} '
                  f'({type(error).__name__}: {error}); {tally.total["failed"]} failed so '
                  f'far in {tally.where}', logger='current', level=logging.WARNING)
        failed = tally.total['failed']
        if self.fail_fast_after and failed >= self.fail_fast_after \
                and failed == sum(tally.total.values()):
            raise RuntimeError(
                f'RefineCoarseMasks: the first {failed} samples {tally.where} tried all '
                f'failed, so training would go on with coarse masks only. First error '
                f'{tally.first_error}. Fix the pipeline: RefineCoarseMasks needs the '
                "loader's (H, W, 3) uint8 image (no LoadImageFromFile(to_float32=True)) "
                'and masks in the same, original frame (put it right after '
                'LoadAnnotations, before any resize, crop or flip). To keep the coarse '
                'masks of failing samples instead set fail_fast_after=0; to stop at the '
                'first failure, strict=True.') from error

    def _cached(self, key_arrays, compute):
        """``(compute()'s array, 'refined' or 'cached')``, through the cache when
        there is one."""
        if self.cache is None:
            return compute(), 'refined'
        if self._settings is None:
            self._settings = self.settings()
        key = content_key(self._settings, *key_arrays)
        entry = self.cache.get(key)
        if entry is not None and 'refined' in entry:
            return entry['refined'], 'cached'
        refined = compute()
        self.cache.put(key, refined=refined)
        return refined, 'refined'

    def _refine_instances(self, results: dict) -> str:
        from mmdet.structures.mask import BitmapMasks, PolygonMasks
        gt_masks = results['gt_masks']
        image = results['img']
        height, width = image.shape[:2]
        coarse = gt_masks.to_ndarray().astype(bool)
        if coarse.shape[1:] != (height, width):
            raise ValueError(f'gt_masks are {coarse.shape[1:]} but img is {(height, width)}: '
                             'put RefineCoarseMasks before any resize or crop')
        if len(coarse) == 0:
            return 'empty'
        refined, outcome = self._cached(
            (image, np.packbits(coarse)),
            lambda: self.refiner.refine(image, coarse, channel_order=self.channel_order).masks)
        refined = refined.astype(bool).reshape(coarse.shape)
        if self.mask_format == 'polygon':  # from polygon or bitmap input alike
            results['gt_masks'] = PolygonMasks(masks_to_polygons(refined), height, width)
        else:
            results['gt_masks'] = BitmapMasks(refined.astype(np.uint8), height, width)
        if self.update_bboxes and 'gt_bboxes' in results:
            boxes = results['gt_masks'].get_bboxes(type(results['gt_bboxes']))
            results['gt_bboxes'] = boxes.to(results['gt_bboxes'].tensor.dtype) \
                if hasattr(boxes, 'to') else boxes
        return outcome

    def _refine_label_map(self, results: dict) -> str:
        image = results['img']
        coarse = results['gt_seg_map']
        if coarse.shape != image.shape[:2]:
            raise ValueError(f'gt_seg_map is {coarse.shape} but img is {image.shape[:2]}: '
                             'put RefineCoarseMasks before any resize or crop')
        refined, outcome = self._cached(
            (image, coarse),
            lambda: self.refiner.refine_semantic(
                image, coarse, ignore_index=self.ignore_index, classes=self.classes,
                background=self.background, channel_order=self.channel_order))
        results['gt_seg_map'] = refined.astype(coarse.dtype)
        return outcome

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(refiner={self.refiner_cfg!r}, '
                f'device={self.device!r}, cache_dir='
                f'{self.cache.cache_dir if self.cache else None!r}, strict={self.strict}, '
                f'mask_format={self.mask_format!r}, update_bboxes={self.update_bboxes}, '
                f'classes={self.classes}, background={self.background}, '
                f'ignore_index={self.ignore_index}, channel_order={self.channel_order!r}, '
                f'fail_fast_after={self.fail_fast_after}, log_interval={self.log_interval})')
