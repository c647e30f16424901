# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining a whole coarse-mask collection, resumably, split over ranks.

:func:`refine_collection` walks the images of a collection
(:mod:`.mask_collections`: a reader of :mod:`mmsamrefiner.mask_io.coarse_masks`
and its writer) assigned to this rank (``items[rank::world_size]``), reuses
those whose record still holds (same input, same settings, outputs intact:
:meth:`~mmsamrefiner.mask_io.refined_masks.RecordBook.check`), refines the others
and hands each result to the collection, which writes it atomically
(:mod:`mmsamrefiner.mask_io.refined_masks`) and records it.

An image that cannot be refined gets its coarse masks written unchanged (when
they can be read) and a ``'failed'`` record with the reason.  Only errors of
the input are final until the input changes: one of :data:`INPUT_ERRORS`
raised while its coarse masks and its image are read and checked against each
other (malformed annotation, unreadable or truncated image, masks of another
size than the image).  Anything else (running out of memory, a killed worker,
a bug, any error the refiner raises once the input passed its checks) is
*transient*: its record is never reused, so the next run retries the image.
An interruption (Ctrl-C, a crash) leaves only finished images recorded, so a
re-run resumes.
"""
import time
from collections import Counter
from typing import Callable, Optional, Sequence

import numpy as np

from mmsamrefiner.mask_io.coarse_masks import AnnotationError, CoarseItem
from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.refiner.inputs import check_same_size, load_rgb_image
from mmsamrefiner.utils.digest import digest_json

from .mask_collections import MaskCollection, as_collection

#: What reading and checking an image's input raises when the input is at
#: fault: :class:`AnnotationError` and the other ``ValueError``s (a malformed
#: annotation or image record, a truncated or undecodable image, a label map of
#: the wrong mode, masks of another size than the image) and ``OSError``s (a
#: missing or unreadable file).
INPUT_ERRORS = (ValueError, OSError)


def is_input_error(error: BaseException, reading: bool) -> bool:
    """Whether ``error`` is final until the input changes: one of
    :data:`INPUT_ERRORS` raised while ``reading`` (and checking) the input.
    Anything else is transient, retried by the next run."""
    return reading and isinstance(error, INPUT_ERRORS)


def settings_digest(refiner, collection, semantic_options: Optional[dict] = None) -> str:
    """Digest of what, besides an image's input, its refined masks depend on:
    the refiner's :meth:`~SAMRefiner.fingerprint` (settings and weights), the
    format and, for label maps, the semantic options."""
    fingerprint = refiner.fingerprint() if hasattr(refiner, 'fingerprint') else repr(refiner)
    collection = as_collection(collection)
    return digest_json([fingerprint, collection.format_name,
                        collection.format_options(semantic_options)])


REFINED = dict(status='refined', reason=None, transient=False, ann_id=None)


def _failure(error: BaseException, reading: bool) -> dict:
    """A failed record: final for an input error met while ``reading`` the
    input (:func:`is_input_error`), else transient."""
    return dict(status='failed', reason=f'{type(error).__name__}: {error}',
                transient=not is_input_error(error, reading),
                ann_id=error.ann_id if isinstance(error, AnnotationError) else None)


def _read_image(item: CoarseItem, embedding, size, what: str):
    """The image of ``item`` (None when its ``embedding`` was computed in a
    batch), checked to have the coarse input's (H, W) ``size`` (None: no
    check)."""
    image = None if embedding is not None else load_rgb_image(item.img_path)
    if size is not None:
        check_same_size(size, embedding.original_size if image is None else image.shape[:2],
                        what)
    return image


def _refine_item(refiner: SAMRefiner, collection: MaskCollection, item: CoarseItem,
                 semantic_options: dict, embedding=None) -> dict:
    """Refine one image (or use its precomputed ``embedding``) and write it;
    returns its record (without timing, input and settings).  The input is
    read and checked first: only errors met there can be final."""
    try:
        coarse = collection.read(item)
    except Exception as error:  # noqa: BLE001 - reported, this image only
        return dict(_failure(error, reading=True), num_masks=0, num_empty=0,
                    outputs=collection.discard(item.key))
    failure, output = None, collection.passthrough(coarse)
    try:
        image = _read_image(item, embedding, collection.size(coarse), collection.what)
    except Exception as error:  # noqa: BLE001 - reported, coarse kept
        failure = _failure(error, reading=True)
    else:
        try:
            output = collection.refine(refiner, image, coarse, embedding, semantic_options)
        except Exception as error:  # noqa: BLE001 - reported, coarse kept
            failure = _failure(error, reading=False)
            output = collection.passthrough(coarse)
    outputs = collection.write(item.key, coarse, output)
    return dict(failure or REFINED, num_masks=collection.num_masks(coarse),
                num_empty=collection.num_empty(output), outputs=outputs)


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
                      collection,
                      writer=None,
                      rank: int = 0,
                      world_size: int = 1,
                      semantic_options: Optional[dict] = None,
                      show_progress: bool = True,
                      after_image: Optional[Callable[[CoarseItem], None]] = None,
                      encode_batch: int = 1,
                      overwrite: bool = False) -> dict:
    """Refine this rank's share of ``collection`` into its output.

    Args:
        refiner: the refiner.
        collection: a :class:`~.mask_collections.MaskCollection`
            (:class:`~.mask_collections.CocoCollection`, ``LabelMapCollection``
            or ``BinaryMaskCollection``), or a reader (``CocoInstances``,
            ``LabelMaps``, ``BinaryMasks``) given with its ``writer``.
        writer: the matching refined-mask writer, with a reader only.
        rank, world_size: this process's share is ``items[rank::world_size]``.
        semantic_options: ``ignore_index``, ``classes``, ``background`` for
            label maps (see :meth:`SAMRefiner.refine_semantic`).
        show_progress: a progress bar with rate and ETA (rank 0 only), and a
            line saying how many images are reused and redone (each rank).
        after_image: called after each finished image (tests use it to
            interrupt a run).
        encode_batch: images per image-encoder call, an int >= 1 (1: one by
            one; more is faster on GPUs, masks equal the one-by-one ones up
            to float rounding), as ``SAMRefinerHook(encode_batch=N)``.  An
            image that cannot be read is left out of the batch and fails on
            its own.
        overwrite: redo every image, whatever its record says.

    Returns:
        ``dict(done=..., skipped=..., redo={why: count}, failed=[(key,
        reason)], seconds=...)`` for this rank's work in this call
        (``skipped``: records reused; ``redo``: why the others were redone,
        see :meth:`RecordBook.check`).

    Raises:
        CollectionError: annotations of a COCO source share ids.
    """
    collection = as_collection(collection, writer)
    if isinstance(encode_batch, bool) or not isinstance(encode_batch, int) or encode_batch < 1:
        raise ValueError('encode_batch is the number of images per image-encoder call, an int '
                         f'>= 1 (1: one by one), got {encode_batch!r}')
    collection.check()
    semantic_options = semantic_options or {}
    settings = settings_digest(refiner, collection, semantic_options)
    items = collection.items()[rank::world_size]
    records = collection.records
    todo, inputs, redo = [], {}, Counter()
    for item in items:
        inputs[item.key] = collection.input_digest(item)
        _, why = ((None, 'overwrite') if overwrite else
                  records.check(item.key, inputs[item.key], settings))
        if why:
            todo.append(item)
            redo[why] += 1
    summary = dict(done=0, skipped=len(items) - len(todo), redo=dict(redo), failed=[],
                   seconds=0.0)
    if show_progress and (summary['skipped'] or set(redo) - {'new'}):
        where = f'rank {rank}/{world_size}: ' if world_size > 1 else ''
        why = ', '.join(f'{why}: {count}' for why, count in redo.items())
        print(f'{where}reusing {summary["skipped"]} finished image(s), refining '
              f'{len(todo)}' + (f' ({why})' if why else ''), flush=True)
    bar = None
    if show_progress and rank == 0 and todo:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(todo))
    embeddings, encode_seconds = {}, 0.0
    for index, item in enumerate(todo):
        if encode_batch > 1 and index % encode_batch == 0:
            embeddings, encode_seconds = _encode_chunk(refiner, todo[index:index + encode_batch])
        start = time.perf_counter()
        record = _refine_item(refiner, collection, item, semantic_options,
                              embeddings.pop(item.key, None))
        record['seconds'] = time.perf_counter() - start + encode_seconds
        records.write(item.key, img_path=item.img_path, input=inputs[item.key],
                             settings=settings, **record)
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
    transient = [r for r in failed if r.get('transient')]
    masks = sum(r['num_masks'] for r in records)
    empty = sum(r['num_empty'] for r in records)
    seconds = [r['seconds'] for r in refined]
    retried = (f', {len(transient)} of them to be retried by the next run' if transient
               else '')
    lines = [f'images: {len(records)} ({len(refined)} refined, {len(failed)} failed and passed '
             f'through unchanged{retried}); masks: {masks} ({empty} empty coarse masks left '
             'empty)']
    if seconds:
        lines.append(f'time per refined image: median {np.median(seconds):.3f} s, '
                     f'mean {np.mean(seconds):.3f} s')
    for r in failed:
        again = (' [transient: retried by the next run]' if r.get('transient') else
                 ' [fix the input and run again]')
        lines.append(f'failed: {r["key"]} ({r["img_path"]}): {r["reason"]}{again}')
    if transient:
        lines.append(f'{len(transient)} image(s) failed transiently (not through their input): '
                     'run the same command again to retry them; finished images are reused')
    return '\n'.join(lines)
