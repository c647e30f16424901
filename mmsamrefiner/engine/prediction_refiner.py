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
``encode_batch`` at a time) and handed to the export.  What depends on the
kind of prediction (mmdet instances, mmseg label maps) is asked of its
:class:`~mmsamrefiner.engine.prediction_kinds.PredictionKind`.
"""
import functools
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from mmsamrefiner.refiner.inputs import check_encode_batch

from .loop_report import LoopCounts
from .prediction_kinds import PredictionKind, prediction_kind
from .sample_refiner import sample_image

#: The model's method each loop calls.
STEP_OF_MODE = dict(val='val_step', test='test_step')


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
        encode_batch: images per image-encoder call, an int >= 1
            (:func:`~mmsamrefiner.refiner.inputs.check_encode_batch`).
    """
    score_thr: float = 0.0
    keep_coarse: bool = False
    classes: Optional[Sequence[int]] = None
    background: int = 0
    ignore_index: Optional[int] = 255
    channel_order: str = 'bgr'
    encode_batch: int = 1

    def __post_init__(self) -> None:
        check_encode_batch(self.encode_batch)


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


@dataclass
class _Pending:
    """A sample to refine: its batch input, the kind of its prediction, its
    export's key (None without an export) and whether it has anything to
    refine."""
    data_sample: object
    batch_input: Optional[torch.Tensor]
    kind: PredictionKind
    key: Optional[dict]
    has_work: bool


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
        """Refine (or read back) a batch.  The images with something to refine
        are encoded ``encode_batch`` per encoder call, each chunk refined
        before the next is encoded (with ``encode_batch=1`` each image is
        encoded as it is refined; those read back or without anything to
        refine are not encoded at all).  On an error (an interrupt) the
        export first finishes writing the images handed to it."""
        try:
            self._refine_batch(data_samples, batch_inputs)
        except BaseException:
            if self.export is not None:
                try:
                    self.export.drain()
                except BaseException:  # noqa: BLE001 - the loop's error goes on
                    pass
            raise

    def _refine_batch(self, data_samples: Sequence, batch_inputs: Sequence) -> None:
        pending = []
        for data_sample, batch_input in zip(data_samples, batch_inputs):
            kind = prediction_kind(data_sample)
            kind.count_seen(self.counts)
            reused, key = (False, None) if self.export is None else self.export.read_back(
                data_sample, batch_input)
            if not reused:
                pending.append(_Pending(data_sample, batch_input, kind, key,
                                        kind.has_work(data_sample, self.options)))
        size = self.options.encode_batch
        if size > 1:
            for sample in pending:  # nothing for SAM: no image, no encoding
                if not sample.has_work:
                    self._refine(sample, None)
            pending = [sample for sample in pending if sample.has_work]
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            embeddings = self._encode(chunk) if size > 1 else [None] * len(chunk)
            for sample, embedding in zip(chunk, embeddings):
                self._refine(sample, embedding)

    def _encode(self, chunk: List[_Pending]) -> List:
        """The samples' images in one encoder call: one ImageEmbedding each."""
        rgbs = []
        for sample in chunk:
            image, order = sample_image(sample.data_sample, sample.batch_input,
                                        self.options.channel_order)
            rgbs.append(image if order == 'rgb' else np.ascontiguousarray(image[..., ::-1]))
        return self.refiner.encode_images(rgbs)

    def _refine(self, sample: _Pending, image_embedding) -> None:
        """Refine one prediction in place, count it and hand it to the
        export.  Its image is read only when it has something to refine and
        no embedding."""
        image, order = None, 'rgb'
        if sample.has_work and image_embedding is None:
            image, order = sample_image(sample.data_sample, sample.batch_input,
                                        self.options.channel_order)
        sample.kind.refine(self.refiner, sample.data_sample, image, order, self.options,
                           image_embedding, self.counts)
        if sample.has_work:
            self.counts.num_refined += 1
        else:
            self.counts.num_nothing_to_refine += 1
        if self.export is not None:
            self.export.write(sample.data_sample, sample.key)
