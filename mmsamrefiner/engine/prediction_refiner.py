# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refining a model's val/test predictions as the loop hands them out.

mmengine's loops call ``evaluator.process`` before the ``after_*_iter`` hooks,
so a hook cannot refine the outputs in between: :func:`wrap_step` makes the
model's ``val_step`` / ``test_step`` refine its own outputs (an instance
attribute that shadows the method, removed again by :func:`unwrap_step`), so
metrics, visualisation and dumps all see the refined masks.

:class:`PredictionRefiner` refines one loop's batches: each prediction is read
back from an earlier export when the loop's
:class:`~mmsamrefiner.engine.pseudo_label_export.PseudoLabelExport` (if any)
has a matching one, the others are refined in place (their images encoded
``encode_batch`` at a time, :func:`encode_batch_size`) and handed to the
export.
"""
import functools
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch

from .loop_report import LoopCounts
from .sample_refiner import refine_det_sample, refine_seg_sample, sample_image, sample_kind

#: The model's method each loop calls.
STEP_OF_MODE = dict(val='val_step', test='test_step')


def encode_batch_size(encode_batch: Union[int, bool]) -> Optional[int]:
    """The hook's ``encode_batch`` as images per image-encoder call.

    An int ``N >= 1``: the images of a loader batch that are refined are
    encoded ``N`` at a time (``1``: one by one, each as it is refined).  A
    bool, the earlier form, still works: ``True`` gives None, the whole loader
    batch in one call; ``False`` is ``1``.

    Raises:
        ValueError: anything else (0, a negative number, a float, a string).
    """
    if isinstance(encode_batch, bool):
        return None if encode_batch else 1
    if isinstance(encode_batch, int) and encode_batch >= 1:
        return encode_batch
    raise ValueError('encode_batch is the number of images per image-encoder call, an int '
                     f'>= 1 (1: one by one; True: the whole loader batch), got {encode_batch!r}')


@dataclass(frozen=True)
class RefineOptions:
    """How predictions are refined (the hook's arguments of the same names).

    Attributes:
        score_thr: mmdet instances scored under it keep their masks.
        keep_coarse: keep the raw prediction (``pred_instances.coarse_masks``
            / ``coarse_sem_seg``).
        classes, background, ignore_index: mmseg, as in
            :meth:`SAMRefiner.refine_semantic`.
        channel_order: of the batch inputs, for images rebuilt from them.
        encode_batch: images per image-encoder call (:func:`encode_batch_size`:
            None for the whole loader batch).
    """
    score_thr: float = 0.0
    keep_coarse: bool = False
    classes: Optional[Sequence[int]] = None
    background: int = 0
    ignore_index: int = 255
    channel_order: str = 'bgr'
    encode_batch: Optional[int] = 1

    def __post_init__(self) -> None:
        if self.encode_batch is not None:  # a bool or a count: as the hook takes it
            object.__setattr__(self, 'encode_batch', encode_batch_size(self.encode_batch))


def wrap_step(model, mode: str, refine_batch: Callable[[list, list], None]) -> None:
    """Make ``model``'s step of ``mode`` (``'val'``/``'test'``) call
    ``refine_batch(outputs, batch_inputs)`` on its outputs before returning
    them; ``batch_inputs[i]`` is the batch's ``inputs[i]`` (None without)."""
    step_name = STEP_OF_MODE[mode]
    step = getattr(model, step_name)

    @functools.wraps(step)
    def refining_step(data_batch):
        outputs = step(data_batch)
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) else None
        refine_batch(outputs, [inputs[i] if inputs is not None else None
                               for i in range(len(outputs))])
        return outputs

    setattr(model, step_name, refining_step)  # instance attribute shadows the method


def unwrap_step(model, mode: str) -> None:
    """Give ``model`` its own step of ``mode`` back (after :func:`wrap_step`)."""
    step_name = STEP_OF_MODE[mode]
    if step_name in vars(model):
        delattr(model, step_name)


class PredictionRefiner:
    """Refines the predictions of one loop in place, counting in ``counts``.

    Args:
        refiner: the (built) :class:`SAMRefiner`.
        options: how to refine.
        counts: the loop's counts.
        export: the loop's :class:`PseudoLabelExport`, or None: each
            prediction is refined, nothing is written or read back.
    """

    def __init__(self, refiner, options: RefineOptions, counts: LoopCounts,
                 export=None) -> None:
        self.refiner = refiner
        self.options = options
        self.counts = counts
        self.export = export

    @torch.no_grad()
    def refine_batch(self, data_samples: Sequence, batch_inputs: Sequence) -> None:
        """Refine (or read back) a batch.  The images to refine are encoded
        ``encode_batch`` per encoder call, each chunk refined before the next
        is encoded (those read back are not encoded at all)."""
        pending = []
        for data_sample, batch_input in zip(data_samples, batch_inputs):
            reused, key = self._read_back(data_sample, batch_input)
            if not reused:
                pending.append((data_sample, batch_input, key))
        size = self.options.encode_batch
        if size == 1:  # one by one: each image is encoded as it is refined
            for data_sample, batch_input, key in pending:
                self._refine(data_sample, batch_input, None, key)
            return
        for data_sample, batch_input, key in pending:  # nothing for SAM: no encoding
            if not self._needs_image(data_sample):
                self._refine(data_sample, batch_input, None, key)
        pending = [p for p in pending if self._needs_image(p[0])]
        size = size or max(len(pending), 1)
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            embeddings = self._encode([p[0] for p in chunk], [p[1] for p in chunk])
            for (data_sample, batch_input, key), embedding in zip(chunk, embeddings):
                self._refine(data_sample, batch_input, embedding, key)

    @torch.no_grad()
    def refine_sample(self, data_sample, batch_input=None, image_embedding=None) -> None:
        """Refine one prediction (or read it back); its image is encoded
        unless ``image_embedding`` is given."""
        reused, key = self._read_back(data_sample, batch_input)
        if not reused:
            self._refine(data_sample, batch_input, image_embedding, key)

    def _read_back(self, data_sample, batch_input):
        """``(reused, key)``: the export's key of the sample (None without an
        export) and whether its export was read back into it."""
        kind = sample_kind(data_sample)
        if kind == 'det':
            self.counts.num_det_images += 1
        if self.export is None:
            return False, None
        return self.export.read_back(data_sample, batch_input)

    def _encode(self, data_samples, batch_inputs) -> List:
        """The samples' images in one encoder call: one ImageEmbedding each."""
        rgbs = []
        for data_sample, batch_input in zip(data_samples, batch_inputs):
            image, order = sample_image(data_sample, batch_input, self.options.channel_order)
            rgbs.append(image if order == 'rgb' else np.ascontiguousarray(image[..., ::-1]))
        return self.refiner.encode_images(rgbs)

    def _needs_image(self, data_sample) -> bool:
        """False for an mmdet prediction without an instance scored at least
        ``score_thr`` (none at all included): SAM has nothing to refine, its
        image is neither read nor encoded.  mmseg: True (split-then-merge
        encodes the image only if the map holds something to refine)."""
        if sample_kind(data_sample) == 'seg':
            return True
        scores = data_sample.pred_instances.get('scores')
        return scores is None or bool((scores >= self.options.score_thr).any())

    def _refine(self, data_sample, batch_input, image_embedding, key) -> None:
        """Refine one prediction in place and hand it to the export."""
        options = self.options
        if self.export is not None:
            self.export.check(data_sample)
        if image_embedding is not None or not self._needs_image(data_sample):
            image, order = None, 'rgb'
        else:
            image, order = sample_image(data_sample, batch_input, options.channel_order)
        if sample_kind(data_sample) == 'det':
            instances = data_sample.pred_instances
            refined = refine_det_sample(self.refiner, data_sample, image, order,
                                        options.score_thr, options.keep_coarse, image_embedding)
            self.counts.num_instances_refined += refined
            self.counts.num_instances_skipped += len(instances) - refined
        else:
            refine_seg_sample(self.refiner, data_sample, image, order, options.classes,
                              options.background, options.ignore_index, options.keep_coarse,
                              image_embedding)
        self.counts.num_refined += 1
        if self.export is not None:
            self.export.write(data_sample, key)
