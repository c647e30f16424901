# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining a whole coarse-mask collection, resumably, split over ranks.

:func:`refine_collection` walks the images of a source (:mod:`mmsamrefiner.io.
coarse_masks`) assigned to this rank (``items[rank::world_size]``), skips those
already recorded as finished, refines each one and hands the result to the
matching writer (:mod:`mmsamrefiner.io.refined_masks`), which writes it
atomically and records it.  An image that cannot be refined (unreadable, masks
of another size than the image, ...) gets its coarse masks written unchanged
and a ``'failed'`` record with the reason.  An interruption (Ctrl-C, a crash)
leaves only finished images recorded, so a re-run resumes.
"""
import time
from typing import Callable, Optional, Sequence

import numpy as np

from mmsamrefiner.io.coarse_masks import (BinaryMasks, CocoInstances,
                                          CoarseItem, LabelMaps)
from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.refiner.inputs import load_rgb_image


def _refine_item(refiner: SAMRefiner, source, writer, item: CoarseItem,
                 semantic_options: dict, embedding=None) -> dict:
    """Refine one image (or use its precomputed ``embedding``) and write it;
    returns its record (without timing)."""
    reason = None
    if isinstance(source, LabelMaps):
        label_map, palette = source.load(item)
        output = label_map
        try:
            image = None if embedding is not None else load_rgb_image(item.img_path)
            output = refiner.refine_semantic(image, label_map, image_embedding=embedding,
                                             **semantic_options)
        except Exception as error:  # noqa: BLE001 - reported, coarse kept
            reason = f'{type(error).__name__}: {error}'
        writer.write(item.key, output, palette)
        return dict(status='failed' if reason else 'refined', reason=reason, num_masks=1,
                    num_empty=0)
    masks, ids = source.load(item)
    refined, scores, empty = masks, np.zeros(len(masks), np.float32), np.zeros(len(masks), bool)
    try:
        image = None if embedding is not None else load_rgb_image(item.img_path)
        if len(masks):
            result = refiner.refine(image, masks, image_embedding=embedding)
            refined, scores, empty = result.masks, result.scores, result.empty
    except Exception as error:  # noqa: BLE001 - reported, coarse kept
        reason = f'{type(error).__name__}: {error}'
    if isinstance(source, CocoInstances):
        writer.write(item.key, ids, refined, scores)
    else:
        writer.write(item.key, ids, refined)
    return dict(status='failed' if reason else 'refined', reason=reason,
                num_masks=int(len(masks)), num_empty=int(np.sum(empty)))


def _encode_chunk(refiner: SAMRefiner, items):
    """Embeddings of the readable images of ``items`` in one encoder call, by
    key, and each image's share of the call's time (seconds)."""
    start = time.perf_counter()
    keys, images = [], []
    for item in items:
        try:
            images.append(load_rgb_image(item.img_path))
            keys.append(item.key)
        except Exception:  # noqa: BLE001 - the item fails (and is reported) on its own
            pass
    embeddings = dict(zip(keys, refiner.encode_images(images)))
    return embeddings, (time.perf_counter() - start) / max(len(items), 1)


def refine_collection(refiner: SAMRefiner,
                      source,
                      writer,
                      rank: int = 0,
                      world_size: int = 1,
                      semantic_options: Optional[dict] = None,
                      show_progress: bool = True,
                      after_image: Optional[Callable[[CoarseItem], None]] = None,
                      encode_batch: int = 1) -> dict:
    """Refine this rank's share of ``source`` into ``writer``.

    Args:
        refiner: the refiner.
        source: a :class:`CocoInstances`, :class:`LabelMaps` or
            :class:`BinaryMasks`.
        writer: the matching refined-mask writer (has ``records``).
        rank, world_size: this process's share is ``items[rank::world_size]``.
        semantic_options: ``ignore_index``, ``classes``, ``background`` for
            label maps (see :meth:`SAMRefiner.refine_semantic`).
        show_progress: a progress bar with rate and ETA (rank 0 only).
        after_image: called after each finished image (tests use it to
            interrupt a run).
        encode_batch: images per image-encoder call (faster on GPUs; masks
            equal the one-by-one ones up to float rounding).  An image that
            cannot be read is left out of the batch and fails on its own.

    Returns:
        ``dict(done=..., skipped=..., failed=[(key, reason)], seconds=...)`` for
        this rank's work in this call.
    """
    if not isinstance(source, (CocoInstances, LabelMaps, BinaryMasks)):
        raise TypeError(f'unknown source {type(source).__name__}')
    semantic_options = semantic_options or {}
    items = source.items()[rank::world_size]
    todo = [item for item in items if not writer.records.done(item.key)]
    bar = None
    if show_progress and rank == 0 and todo:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(todo))
    if encode_batch < 1:
        raise ValueError(f'encode_batch must be >= 1, got {encode_batch}')
    summary = dict(done=0, skipped=len(items) - len(todo), failed=[], seconds=0.0)
    embeddings, encode_seconds = {}, 0.0
    for index, item in enumerate(todo):
        if encode_batch > 1 and index % encode_batch == 0:
            embeddings, encode_seconds = _encode_chunk(refiner, todo[index:index + encode_batch])
        start = time.perf_counter()
        record = _refine_item(refiner, source, writer, item, semantic_options,
                              embeddings.pop(item.key, None))
        record['seconds'] = time.perf_counter() - start + encode_seconds
        writer.records.write(item.key, img_path=item.img_path, **record)
        summary['done'] += 1
        summary['seconds'] += record['seconds']
        if record['status'] == 'failed':
            summary['failed'].append((item.key, record['reason']))
        if bar is not None:
            bar.update()
        if after_image is not None:
            after_image(item)
    return summary


def summarize(records: Sequence[dict]) -> str:
    """A few lines about a finished collection, from all ranks' records."""
    refined = [r for r in records if r['status'] == 'refined']
    failed = [r for r in records if r['status'] == 'failed']
    masks = sum(r['num_masks'] for r in records)
    empty = sum(r['num_empty'] for r in records)
    seconds = [r['seconds'] for r in refined]
    lines = [f'images: {len(records)} ({len(refined)} refined, {len(failed)} failed and passed '
             f'through unchanged); masks: {masks} ({empty} empty coarse masks left empty)']
    if seconds:
        lines.append(f'time per refined image: median {np.median(seconds):.3f} s, '
                     f'mean {np.mean(seconds):.3f} s')
    lines += [f'failed: {r["key"]} ({r["img_path"]}): {r["reason"]}' for r in failed]
    return '\n'.join(lines)
