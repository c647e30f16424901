# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Images per second on a whole collection, and where an image's time goes
(``tools/benchmark_speed.py --collection``; the method is in its docstring).

A *configuration* is a name and a dict of settings: each key is a setting of
:class:`~mmsamrefiner.refiner.SAMRefiner` (``encoder_dtype``,
``encoder_attention``, ...) or of
:func:`~mmsamrefiner.apis.refine_collection` (``encode_batch``, ...), read
from their signatures, so settings that other versions of the code add are
passed through as they come; the speed switches of a built refiner
(:data:`REFINER_ATTRIBUTES`: ``group_windows``, ``distance_backend``) are set
on it; a configuration with a setting none of these takes (or that the
refiner refuses) is skipped with the reason, and the others run.

* :func:`time_collection`: one end-to-end run of ``refine_collection`` (what
  ``tools/refine.py`` calls) plus the merge of the output, in seconds;
* :func:`stage_times`: one pass over the images with the refiner's and the
  collection's own methods, each stage timed (ms per image);
* :func:`mask_agreement`: the refined masks of two runs' outputs, read back.
"""
import inspect
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from mmsamrefiner.apis import refine_collection
from mmsamrefiner.evaluation import mask_iou
from mmsamrefiner.mask_io.mask_collections import CocoCollection
from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.refiner.inputs import load_rgb_image

#: Stages of :func:`stage_times`, in the order an image meets them.
STAGES = ('read', 'annotations', 'preprocess', 'encoder', 'mining', 'decoder', 'upscale',
          'selection', 'write')


@dataclass
class Configuration:
    """A named set of settings, split by who takes them.

    Attributes:
        name: as given.
        settings: as given.
        refiner: the settings :class:`SAMRefiner` takes.
        collection: the settings :func:`refine_collection` takes.
        skipped: why the configuration cannot run here ('' when it can).
    """
    name: str
    settings: dict
    refiner: dict = field(default_factory=dict)
    collection: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    skipped: str = ''


#: Switches that are attributes of a built refiner rather than arguments (they
#: change the speed, not the masks): name -> (path of the object, attribute).
REFINER_ATTRIBUTES = {'group_windows': ('', 'group_windows'),
                      'distance_backend': ('miner', 'distance_backend')}


def parameters_of(function: Callable) -> set:
    return set(inspect.signature(function).parameters)


def split_settings(name: str, settings: dict) -> Configuration:
    """A :class:`Configuration` whose settings go to the refiner or to
    ``refine_collection`` by their signatures; a setting neither takes makes
    it ``skipped``."""
    refiner_keys = parameters_of(SAMRefiner) - {'sam'}
    collection_keys = parameters_of(refine_collection) - {'refiner', 'collection', 'writer'}
    config = Configuration(name, dict(settings))
    unknown = []
    for key, value in settings.items():
        if key in refiner_keys:
            config.refiner[key] = value
        elif key in collection_keys:
            config.collection[key] = value
        elif key in REFINER_ATTRIBUTES:
            config.attributes[key] = value
        else:
            unknown.append(key)
    if unknown:
        config.skipped = (f'setting(s) {sorted(unknown)} taken neither by SAMRefiner nor by '
                          'refine_collection in this checkout')
    return config


def build_refiner(sam: torch.nn.Module, config: Configuration, device: str,
                  base: dict) -> Optional[SAMRefiner]:
    """The configuration's refiner on ``sam`` (``base`` settings, then the
    configuration's), or None with ``config.skipped`` set when the refiner
    refuses them."""
    try:
        refiner = SAMRefiner(sam, device=device, **dict(base, **config.refiner)).eval()
        for key, value in config.attributes.items():
            path, name = REFINER_ATTRIBUTES[key]
            owner = getattr(refiner, path) if path else refiner
            if not hasattr(owner, name):
                raise ValueError(f'{key}: this checkout has no such switch')
            setattr(owner, name, value)
        return refiner
    except (TypeError, ValueError) as error:
        config.skipped = f'the refiner refuses its settings: {error}'
        return None


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def open_output(ann_file: str, img_dir: str, out_file: str) -> CocoCollection:
    collection = CocoCollection.open(ann_file, img_dir, out_file)
    collection.check()
    return collection


def time_collection(refiner: SAMRefiner, collection: CocoCollection,
                    settings: dict) -> Tuple[float, dict]:
    """Seconds of one end-to-end run: ``refine_collection`` over every image
    (``overwrite=True``: no record reused) and the merge of the output, as
    ``tools/refine.py`` does them; and the run's summary."""
    keys = [item.key for item in collection.items()]
    sync(refiner.device)
    start = time.perf_counter()
    with torch.inference_mode():
        summary = refine_collection(refiner, collection, show_progress=False, overwrite=True,
                                    **settings)
    sync(refiner.device)
    collection.finish(keys)
    return time.perf_counter() - start, summary


class StageClock:
    """Seconds per stage, summed over calls."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: Dict[str, float] = dict.fromkeys(STAGES, 0.0)

    def wrap(self, stage: str, method: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = method(*args, **kwargs)
            sync(self.device)
            self.seconds[stage] += time.perf_counter() - start
            return out
        return timed

    def run(self, stage: str, method: Callable, *args, **kwargs):
        return self.wrap(stage, method)(*args, **kwargs)


@contextmanager
def timed_methods(clock: StageClock, targets: List[Tuple[object, str, str]]):
    """Each ``(object, method name, stage)`` of ``targets`` timed into
    ``clock`` while inside (an instance attribute over the method), then
    put back."""
    for obj, name, stage in targets:
        setattr(obj, name, clock.wrap(stage, getattr(obj, name)))
    try:
        yield
    finally:
        for obj, name, _ in targets:
            delattr(obj, name)


@torch.inference_mode()
def stage_times(refiner: SAMRefiner, collection: CocoCollection
                ) -> Tuple[Dict[str, float], Optional[torch.Tensor]]:
    """One pass over the collection, image by image, with the code the
    collection run uses: ``load_rgb_image`` (read), the collection's
    ``read`` (annotations), ``encode_image`` (its backend's ``preprocess``
    and ``run_encoder`` timed apart), the collection's ``refine`` (the
    refiner's ``mine``, ``decode`` and ``upscale`` timed apart; the rest,
    candidate selection and bookkeeping, is ``selection``) and ``write``
    (RLE + atomic write).  On CUDA each stage ends with a synchronisation.

    Returns:
        ms per image of each of :data:`STAGES`, and the first image's
        embedding (for the agreement of encoders).
    """
    items = collection.items()
    clock = StageClock(refiner.device)
    backend = refiner.backend
    first_embedding = None
    refine_seconds = 0.0
    with timed_methods(clock, [(backend, 'preprocess', 'preprocess'),
                               (backend, 'run_encoder', 'encoder'),
                               (refiner, 'mine', 'mining'), (refiner, 'decode', 'decoder'),
                               (refiner, 'upscale', 'upscale')]):
        for item in items:
            rgb = clock.run('read', load_rgb_image, item.img_path)
            coarse = clock.run('annotations', collection.read, item)
            embedding = refiner.encode_image(rgb)
            if first_embedding is None:
                first_embedding = embedding.embedding.cpu()
            start = time.perf_counter()
            output = collection.refine(refiner, rgb, coarse, embedding, {})
            sync(refiner.device)
            refine_seconds += time.perf_counter() - start
            clock.run('write', lambda: collection.write(item.key, coarse,
                                                        collection.to_host(output)))
    seconds = clock.seconds
    seconds['selection'] = refine_seconds - sum(seconds[s] for s in ('mining', 'decoder',
                                                                    'upscale'))
    return {stage: 1000 * s / max(len(items), 1) for stage, s in seconds.items()}, \
        first_embedding


def mask_agreement(collection: CocoCollection, reference: CocoCollection) -> Tuple[float, float]:
    """(mean IoU, fraction identical) of every refined mask of
    ``collection``'s output against ``reference``'s, read back from the
    written parts (1 where both are empty)."""
    ious, identical = [], []
    for item in collection.items():
        ours, theirs = collection.writer.read(item.key), reference.writer.read(item.key)
        if ours is None or theirs is None or ours['ann_ids'] != theirs['ann_ids']:
            raise ValueError(f'the outputs of image {item.key} cannot be compared')
        if not len(ours['masks']):
            continue
        ious.append(mask_iou(ours['masks'], theirs['masks']))
        identical.append((ours['masks'] == theirs['masks']).reshape(len(ours['masks']), -1)
                         .all(1))
    if not ious:
        return 1.0, 1.0
    return float(np.concatenate(ious).mean()), float(np.concatenate(identical).mean())


def stage_table(names: List[str], stages: Dict[str, Dict[str, float]]) -> List[str]:
    """Markdown rows: ms per image of each stage, per configuration."""
    lines = ['| configuration | ' + ' | '.join(STAGES) + ' | sum |',
             '| --- |' + ' ---: |' * (len(STAGES) + 1)]
    for name in names:
        row = stages[name]
        lines.append(f'| {name} | ' + ' | '.join(f'{row[s]:.1f}' for s in STAGES) +
                     f' | {sum(row.values()):.1f} |')
    return lines
