# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining a whole coarse-mask collection, resumably, split over ranks.

:func:`refine_collection` walks the images of a collection
(:mod:`mmsamrefiner.mask_io.mask_collections`: a reader of
:mod:`mmsamrefiner.mask_io.coarse_masks` and its writer) assigned to this rank
(``items[rank::world_size]``), reuses those whose record still holds (same
input, same settings, outputs intact:
:meth:`~mmsamrefiner.mask_io.records.RecordBook.check`), refines the others
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

The loop is a pipeline (``workers`` > 0, :mod:`mmsamrefiner.utils.background`):
reader threads check and read the coarse inputs and the images and resize
them to the encoder frame (:func:`_read_item`) ahead of the refiner, which
runs in the calling thread (:func:`_refine_item`); a writer thread copies the
refined masks to the host, encodes and writes them and records each image
(:func:`_write_item`) behind it.  Images are refined, written and recorded in
the order of the collection, and what is written does not depend on
``workers`` (0: each step in turn in the calling thread).  On an interrupt the
writer finishes the images already refined before the error goes on.

Before any of its pixels are decoded, an image may be refused
(:class:`~mmsamrefiner.mask_io.coarse_masks.InputRefused`, a final failure):
a COCO ``file_name`` leading outside the image folder (unless the collection
allows it), or more pixels than ``max_pixels`` (the image file's header, the
COCO record's ``height`` x ``width``, the label map's or masks' headers; an
image whose header cannot be read is checked once decoded).  Its record keeps
the limits it was refused under, and is redone once they change.

An output file that cannot be written (disk full, read-only, no permission)
stops the run with :class:`~mmsamrefiner.mask_io.records.OutputWriteError`
(its ``finished``: the images of this rank with a record, which a re-run
reuses).
"""
import os
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from mmsamrefiner.mask_io.coarse_masks import (
    AnnotationError,
    CoarseItem,
    InputRefused,
    check_pixels,
)
from mmsamrefiner.mask_io.mask_collections import MaskCollection, as_collection
from mmsamrefiner.mask_io.records import OutputWriteError, RecordBook
from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.refiner.inputs import check_encode_batch, check_same_size, load_rgb_image
from mmsamrefiner.refiner.refiner import fingerprint_of
from mmsamrefiner.utils.background import BackgroundWriter, read_ahead
from mmsamrefiner.utils.digest import digest_json

#: What reading and checking an image's input raises when the input is at
#: fault: :class:`AnnotationError` and the other ``ValueError``s (a malformed
#: annotation or image record, a truncated or undecodable image, a label map of
#: the wrong mode, masks of another size than the image) and ``OSError``s (a
#: missing or unreadable file).
INPUT_ERRORS = (ValueError, OSError)

#: why a reusable record is redone all the same: it was refused under other
#: limits (``max_pixels``, files outside the image folder allowed or not)
LIMITS_CHANGED = 'limits changed'


def is_input_error(error: BaseException, reading: bool) -> bool:
    """Whether ``error`` is final until the input changes: one of
    :data:`INPUT_ERRORS` raised while ``reading`` (and checking) the input.
    Anything else is transient, retried by the next run."""
    return reading and isinstance(error, INPUT_ERRORS)


#: the signals every output carries (:mod:`mmsamrefiner.mask_io.refined_masks`);
#: in the settings digest, so outputs written without them are redone
OUTPUT_SIGNALS = ('score', 'stability', 'coarse_iou')


def settings_digest(refiner, collection, semantic_options: Optional[dict] = None) -> str:
    """Digest of what, besides an image's input, its outputs depend on: the
    refiner's fingerprint (settings and weights:
    :func:`~mmsamrefiner.refiner.refiner.fingerprint_of`), the format, for
    label maps the semantic options, and the signals written
    (:data:`OUTPUT_SIGNALS`)."""
    collection = as_collection(collection)
    return digest_json([fingerprint_of(refiner), collection.format_name,
                        collection.format_options(semantic_options), list(OUTPUT_SIGNALS)])


REFINED = dict(status='refined', reason=None, transient=False, ann_id=None)


def _failure(error: BaseException, reading: bool, limits: dict) -> dict:
    """A failed record: final for an input error met while ``reading`` the
    input (:func:`is_input_error`), else transient; an image refused
    (:class:`InputRefused`) keeps the ``limits`` it was refused under."""
    record = dict(status='failed', reason=f'{type(error).__name__}: {error}',
                  transient=not is_input_error(error, reading),
                  ann_id=error.ann_id if isinstance(error, AnnotationError) else None)
    if isinstance(error, InputRefused):
        record['refused_under'] = limits
    return record


def _load_image(item: CoarseItem, max_pixels: Optional[int]) -> np.ndarray:
    """The (H, W, 3) uint8 RGB image of ``item``; over ``max_pixels`` once
    decoded (when its header could not tell) it is refused."""
    image = load_rgb_image(item.img_path)
    check_pixels(f'image {item.img_path}', *image.shape[:2], max_pixels)
    return image


@dataclass
class _Input:
    """One image's input, read ahead of the refiner (:func:`_read_item`).

    Attributes:
        item: the image.
        coarse: its coarse input (:meth:`MaskCollection.read`); None when it
            could not be read (then ``failure`` says why).
        image: (H, W, 3) uint8 RGB, or a
            :class:`~mmsamrefiner.refiner.refiner.PreparedImage` (resized to
            the encoder frame ahead); None when it could not be read.
        failure: the failed record when the input could not be read or
            prepared, else None.
    """
    item: CoarseItem
    coarse: Any = None
    image: Any = None
    failure: Optional[dict] = None


def _read_item(collection: MaskCollection, item: CoarseItem, max_pixels: Optional[int],
               limits: dict, prepare: Optional[Callable] = None) -> _Input:
    """Check (:meth:`~MaskCollection.check_image`) and read one image's
    coarse input, then its image, checked to have the coarse input's size,
    then ``prepare`` it (``SAMRefiner.prepare_image``; None: left as read).
    Only errors met while reading and checking can be final; one of
    ``prepare`` is transient, like the refiner's.

    The three ``except Exception`` below are broad on purpose: whatever one
    image raises (an error of its input, or of the run such as running out
    of memory) fails that image only, with a record that says why, and the
    run goes on; :func:`is_input_error` tells final failures from transient
    ones, which the next run retries.
    """
    try:
        collection.check_image(item, max_pixels)
        coarse = collection.read(item, max_pixels)
    except Exception as error:  # noqa: BLE001 - see the docstring
        return _Input(item, failure=_failure(error, True, limits))
    try:
        image = _load_image(item, max_pixels)
        size = collection.size(coarse)
        if size is not None:
            check_same_size(size, image.shape[:2], collection.what)
    except Exception as error:  # noqa: BLE001 - see the docstring; the coarse input is kept
        return _Input(item, coarse, failure=_failure(error, True, limits))
    if prepare is not None:
        try:
            image = prepare(image)
        except Exception as error:  # noqa: BLE001 - see the docstring; the coarse input is kept
            return _Input(item, coarse, failure=_failure(error, False, limits))
    return _Input(item, coarse, image)


@dataclass
class _Refined:
    """What is written for one image (:func:`_write_item`): its coarse input
    (None: unreadable, its outputs are removed), its ``output``
    (:meth:`MaskCollection.refine`, possibly on the refiner's device, or
    :meth:`MaskCollection.passthrough`) and its ``failure`` (None: refined)."""
    item: CoarseItem
    coarse: Any
    output: Any
    failure: Optional[dict]


def _refine_item(refiner: SAMRefiner, collection: MaskCollection, read: _Input,
                 semantic_options: dict, limits: dict, embedding=None) -> _Refined:
    """Refine one image that was read (:func:`_read_item`), with its
    precomputed ``embedding`` if given; returns what is written.  An image
    whose input could not be read passes its coarse input through; so does
    one the refiner fails on (``except Exception``: broad on purpose, as in
    :func:`_read_item`; such a failure is transient)."""
    if read.failure is not None:
        output = None if read.coarse is None else collection.passthrough(read.coarse)
        return _Refined(read.item, read.coarse, output, read.failure)
    try:
        output = collection.refine(refiner, read.image, read.coarse, embedding,
                                   semantic_options)
    except Exception as error:  # noqa: BLE001 - see the docstring; the coarse input is kept
        return _Refined(read.item, read.coarse, collection.passthrough(read.coarse),
                        _failure(error, False, limits))
    return _Refined(read.item, read.coarse, output, None)


def _write_item(collection: MaskCollection, refined: _Refined) -> dict:
    """Write one image's output atomically (copied to the host first), or
    remove the outputs of an image whose coarse input could not be read;
    returns its record (without timing, input and settings)."""
    if refined.coarse is None:
        return dict(refined.failure, num_masks=0, num_empty=0,
                    outputs=collection.discard(refined.item.key))
    output = collection.to_host(refined.output)
    outputs = collection.write(refined.item.key, refined.coarse, output)
    return dict(refined.failure or REFINED, num_masks=collection.num_masks(refined.coarse),
                num_empty=collection.num_empty(output), outputs=outputs)


def _encode_chunk(refiner: SAMRefiner, chunk: List[_Input]) -> Tuple[Dict[str, Any], float]:
    """Embeddings of the images of ``chunk`` that were read, in one encoder
    call, by key, and each image's share of the call's time (seconds).  An
    image that could not be read is left out; it fails on its own, with the
    error met while reading it."""
    start = time.perf_counter()
    readable = [read for read in chunk if read.failure is None]
    embeddings = refiner.encode_images([read.image for read in readable])
    keys = [read.item.key for read in readable]
    return dict(zip(keys, embeddings)), (time.perf_counter() - start) / max(len(chunk), 1)


@dataclass
class _Plan:
    """This rank's share of a collection, sorted out against the records.

    Attributes:
        items: this rank's images.
        todo: those to refine (the others' records are reused).
        inputs: ``{key: input digest}`` of every item.
        redo: ``{why: count}`` of ``todo`` (see :func:`_why_redo`).
    """
    items: List[CoarseItem]
    todo: List[CoarseItem] = field(default_factory=list)
    inputs: Dict[str, str] = field(default_factory=dict)
    redo: Counter = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return len(self.items) - len(self.todo)


def _check_max_pixels(max_pixels) -> None:
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(
            max_pixels, int) or max_pixels < 0):
        raise ValueError('max_pixels is the most pixels an image may have, an int >= 0 (0 or '
                         f'None: no limit), got {max_pixels!r}')


def _why_redo(records: RecordBook, key: str, input_digest: str, settings: str,
              limits: dict) -> str:
    """Why the image of ``key`` is redone (see :meth:`RecordBook.check`, and
    :data:`LIMITS_CHANGED`), or ``''`` when its record is reused."""
    record, why = records.check(key, input_digest, settings)
    if not why and record.get('refused_under', limits) != limits:
        return LIMITS_CHANGED
    return why


def _plan(collection: MaskCollection, items: List[CoarseItem], settings: str, limits: dict,
          overwrite: bool) -> _Plan:
    """Which of ``items`` to refine, and why (``overwrite``: all of them)."""
    plan = _Plan(items)
    for item in items:
        plan.inputs[item.key] = collection.input_digest(item)
        why = 'overwrite' if overwrite else _why_redo(
            collection.records, item.key, plan.inputs[item.key], settings, limits)
        if why:
            plan.todo.append(item)
            plan.redo[why] += 1
    return plan


def _print_plan(plan: _Plan, rank: int, world_size: int) -> None:
    """One line when images are reused or redone for another reason than
    being new."""
    if not plan.skipped and not set(plan.redo) - {'new'}:
        return
    where = f'rank {rank}/{world_size}: ' if world_size > 1 else ''
    why = ', '.join(f'{why}: {count}' for why, count in plan.redo.items())
    print(f'{where}reusing {plan.skipped} finished image(s), refining {len(plan.todo)}' +
          (f' ({why})' if why else ''), flush=True)


def _chunks(iterable: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` consecutive elements (the last one may be shorter)."""
    iterator = iter(iterable)
    while True:
        chunk = list(islice(iterator, size))
        if not chunk:
            return
        yield chunk


def default_workers() -> int:
    """The default reader threads of :func:`refine_collection`: the CPU
    count less two (the refiner's own threads keep two cores), at most 4; so
    none on a machine of two cores or fewer, where threads beside the
    refiner only slow it down (docs/speed.md)."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def _check_workers(workers) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError('workers is the number of threads reading ahead of the refiner, an int '
                         f'>= 0 (0: everything in turn in the calling thread), got {workers!r}')


def refine_collection(refiner: SAMRefiner,
                      collection,
                      writer=None,
                      rank: int = 0,
                      world_size: int = 1,
                      semantic_options: Optional[dict] = None,
                      show_progress: bool = True,
                      encode_batch: int = 1,
                      overwrite: bool = False,
                      max_pixels: Optional[int] = None,
                      workers: Optional[int] = None) -> dict:
    """Refine this rank's share of ``collection`` into its output.

    Args:
        refiner: the refiner (a ``SAMRefiner``; its ``prepare_image`` and
            ``device`` are used when it has them).
        collection: a :class:`~mmsamrefiner.mask_io.mask_collections.MaskCollection`
            (``CocoCollection``, ``LabelMapCollection`` or
            ``BinaryMaskCollection``), or a reader (``CocoInstances``,
            ``LabelMaps``, ``BinaryMasks``) given with its ``writer``.
        writer: the matching refined-mask writer, with a reader only.
        rank, world_size: this process's share is ``items[rank::world_size]``.
        semantic_options: ``ignore_index``, ``classes``, ``background`` for
            label maps (see :meth:`SAMRefiner.refine_semantic`).
        show_progress: a progress bar with rate and ETA (rank 0 only), and a
            line saying how many images are reused and redone (each rank).
        encode_batch: images per image-encoder call, an int >= 1 (1: one by
            one; more is faster on GPUs, masks equal the one-by-one ones up
            to float rounding), as ``SAMRefinerHook(encode_batch=N)``
            (:func:`~mmsamrefiner.refiner.inputs.check_encode_batch`).
            An image that cannot be read is left out of the batch and fails
            on its own.
        overwrite: redo every image, whatever its record says.
        max_pixels: an image (or its coarse input) of more pixels fails on its
            own before it is decoded (see the module docstring); None or 0:
            no limit.
        workers: threads reading ahead of the refiner (coarse input and
            image decoded, the image resized to the encoder frame:
            ``SAMRefiner.prepare_image``), a writer thread behind it (masks
            copied to the host, encoded, written, recorded); None:
            :func:`default_workers`; 0: each image read, refined and written
            in turn in the calling thread.  The outputs, the records and
            their order are the same for every number.

    Returns:
        ``dict(done=..., skipped=..., redo={why: count}, failed=[(key,
        reason)], seconds=...)`` for this rank's work in this call
        (``skipped``: records reused; ``redo``: why the others were redone,
        see :meth:`RecordBook.check`).

    Raises:
        CollectionError: annotations of a COCO source share ids, or two
            images share a key (output name).
        OutputWriteError: an output cannot be written (disk full, ...); its
            ``finished`` is the number of this rank's images with a record.
    """
    collection = as_collection(collection, writer)
    check_encode_batch(encode_batch)
    workers = default_workers() if workers is None else workers
    _check_workers(workers)
    _check_max_pixels(max_pixels)
    collection.check()
    semantic_options = semantic_options or {}
    settings = settings_digest(refiner, collection, semantic_options)
    limits = collection.read_limits(max_pixels)
    plan = _plan(collection, collection.items()[rank::world_size], settings, limits, overwrite)
    if show_progress:
        _print_plan(plan, rank, world_size)
    summary = dict(done=0, skipped=plan.skipped, redo=dict(plan.redo), failed=[], seconds=0.0)
    bar = None
    if show_progress and rank == 0 and plan.todo:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(plan.todo))

    prepare = getattr(refiner, 'prepare_image', None) if workers else None

    def read(item: CoarseItem) -> _Input:
        return _read_item(collection, item, max_pixels, limits, prepare)

    def write(refined: _Refined, seconds: float) -> None:
        start, item = time.perf_counter(), refined.item
        try:
            record = _write_item(collection, refined)
            record['seconds'] = seconds + time.perf_counter() - start
            collection.records.write(item.key, img_path=item.img_path,
                                     input=plan.inputs[item.key], settings=settings, **record)
        except OutputWriteError as error:
            error.finished = summary['skipped'] + summary['done']
            raise
        _count(summary, item, record)
        if bar is not None:
            bar.update()

    with closing(read_ahead(read, plan.todo, workers)) as inputs, \
            BackgroundWriter(max_pending=2 * workers) as writer:
        for chunk in _chunks(inputs, encode_batch):
            embeddings, encode_seconds = {}, 0.0
            if encode_batch > 1:
                embeddings, encode_seconds = _encode_chunk(refiner, chunk)
            for read_input in chunk:
                start = time.perf_counter()
                refined = _refine_item(refiner, collection, read_input, semantic_options, limits,
                                       embeddings.pop(read_input.item.key, None))
                seconds = time.perf_counter() - start + encode_seconds
                writer.submit(partial(write, refined, seconds))
    return summary


def _count(summary: dict, item: CoarseItem, record: dict) -> None:
    """Add a finished image's ``record`` to the ``summary``."""
    summary['done'] += 1
    summary['seconds'] += record['seconds']
    if record['status'] == 'failed':
        summary['failed'].append((item.key, record['reason']))


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
