# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``SAMRefinerHook``: refine the masks an mmdet or mmseg model predicts.

The hook holds the settings and wires the loops; the work is done by
:mod:`..prediction_refiner` (wrapping ``val_step``/``test_step``, refining),
:mod:`..prediction_kinds` (what depends on the kind of prediction, mmdet or
mmseg), :mod:`..pseudo_label_export` (export and resume), :mod:`..loop_report`
(counts and log lines) and :mod:`..teacher` (semi-supervised pseudo-labels).
"""
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook

from mmsamrefiner.refiner.inputs import check_channel_order, check_encode_batch
from mmsamrefiner.refiner.refiner import fingerprint_of
from mmsamrefiner.registry import HOOKS, build_in_scope
from mmsamrefiner.runner_checkpoints import install as install_runner_checkpoints

from ..loop_report import LoopCounts, log_report, summarize
from ..prediction_refiner import (
    STEP_OF_MODE,
    PredictionRefiner,
    RefineOptions,
    unwrap_step,
    wrap_step,
)
from ..pseudo_label_export import PseudoLabelExport
from ..teacher import TeacherMaskRefiner, attach_mask_refiner

#: images of a loop whose export may wait for the export's writer thread
#: (copied to the host, encoded, written and recorded while the loop goes on;
#: waited for at the loop's end, before the parts are merged)
EXPORT_WRITE_BEHIND = 4


@HOOKS.register_module()
class SAMRefinerHook(Hook):
    """Refine predicted masks with SAMRefiner before the evaluator sees them.

    Works with mmdet instance segmentation models (``pred_instances.masks``,
    refined per instance) and mmseg models (``pred_sem_seg``, refined through
    split-then-merge).  mmengine's loops call ``evaluator.process`` before the
    ``after_*_iter`` hooks, so the hook wraps the model's ``val_step`` /
    ``test_step`` when a loop starts and restores them when it ends: metrics,
    visualisation and dumps all see the refined masks
    (:mod:`~mmsamrefiner.engine.prediction_refiner`).

    Images: each sample's ``img_path`` is read (predictions are in the original
    image's frame); without one, the image is rebuilt from the batch input.

    Pseudo-label export (``out_dir``): each image's refined masks are written
    atomically as the run goes (mmdet: COCO parts merged into
    ``<out_dir>/instances.json`` at the end of the loop; mmseg: one PNG label
    map per image, at its path under the dataset's image folder), images
    without predictions included; names are never paths, and two images of a
    loop that would share one are refused, naming both
    (:meth:`~mmsamrefiner.engine.pseudo_label_export.PseudoLabelExport.claim`);
    then a record (``<out_dir>/.records/``, the scheme ``tools/refine.py``
    uses) of what it was computed from: the model's unrefined prediction, the
    image, :meth:`SAMRefiner.fingerprint` (settings and the *content* of SAM's
    weights) and the hook's settings, and of the files' digests
    (:mod:`~mmsamrefiner.engine.pseudo_label_export`).

    Resume: in the **test loop**, an image whose record matches is read back
    instead of refined again (an interrupted run resumes; the same checkpoint
    tested twice is refined once); any difference recomputes
    the image and overwrites the stale export.  The **val loop never reuses**
    exports: each validation refines every image and rewrites the export, so
    a metric is never computed from another epoch's masks.

    Each loop logs how many images were refined, had nothing to refine (mmdet:
    no instance scored at least ``score_thr``, none at all included; mmseg:
    no class to refine; kept as predicted), were reused and were found stale
    (and why), and for mmdet how many instances were refined and how many
    ``score_thr`` skipped, with a warning when it let no instance through;
    the numbers are also in :attr:`report` (summed over ranks) and, for this
    process, in ``num_refined``, ``num_nothing_to_refine``, ``num_resumed``,
    ``num_stale``, ``stale_reasons``, ``num_instances_refined``,
    ``num_instances_reused``, ``num_instances_skipped``, ``num_det_images``
    (:mod:`~mmsamrefiner.engine.loop_report`).

    Semi-supervised training (``refine_pseudo_labels=True``): with
    :class:`~mmsamrefiner.models.semi_mask_detector.SemiMaskDetector`, the
    teacher's predicted masks are refined where they are made (in the
    teacher's input frame, against the de-normalised teacher input), then
    carried into the student's view with mmdet's homographies; a model whose
    student cannot learn them (mmdet's ``SemiBaseDetector``, ``SoftTeacher``,
    a model without a teacher) is refused when training starts
    (:mod:`~mmsamrefiner.engine.teacher`).

    Args:
        refiner (dict | SAMRefiner): the refiner or its config.
        device (str, optional): where SAM runs; default the model's device.
        modes (Sequence[str]): loops to refine in: ``'val'``, ``'test'``.
        score_thr (float): mmdet instances scored under it keep their masks.
        keep_coarse (bool): keep the raw prediction alongside
            (``pred_instances.coarse_masks`` / ``coarse_sem_seg``).
        out_dir (str, optional): where to export refined pseudo-labels; a
            relative path is taken inside the runner's work dir.
        export_score_thr (float, optional): mmdet: instances scored under it
            are left out of the exported ``instances.json`` (the evaluator
            still sees them).  None (default): every predicted instance is
            exported; pseudo-labelling configs set it
            (``configs/self_training/``).  Applied when the loop's parts are
            merged, so changing it refines nothing again.
        classes (Sequence[int], optional): mmseg class ids to refine (default:
            all present except ``background`` and ``ignore_index``).
        background (int): mmseg label of pixels no refined instance claims.
        ignore_index (int): mmseg label left alone.
        refine_pseudo_labels (bool): refine the teacher's pseudo-masks
            during semi-supervised training (``SemiMaskDetector``).
        channel_order (str): channel order of the batch inputs, ``'rgb'`` or
            ``'bgr'``, used when an image must be rebuilt from them (MM
            loaders give ``'bgr'``).
        encode_batch (int): images of a loader batch per image-encoder call,
            an int >= 1, as ``tools/refine.py --encode-batch``: ``1``
            (default) encodes each image on its own; more is faster on GPUs
            (the masks equal the one-by-one ones up to float rounding, so it
            is part of the export's key).  Images whose export is read back,
            or that have nothing to refine, are not encoded.
    """

    priority = 'LOW'

    def __init__(self,
                 refiner: Union[dict, torch.nn.Module],
                 device: Optional[str] = None,
                 modes: Sequence[str] = ('val', 'test'),
                 score_thr: float = 0.0,
                 keep_coarse: bool = False,
                 out_dir: Optional[str] = None,
                 export_score_thr: Optional[float] = None,
                 classes: Optional[Sequence[int]] = None,
                 background: int = 0,
                 ignore_index: int = 255,
                 refine_pseudo_labels: bool = False,
                 channel_order: str = 'bgr',
                 encode_batch: int = 1) -> None:
        unknown = set(modes) - set(STEP_OF_MODE)
        if unknown:
            raise ValueError(f'modes must be among {sorted(STEP_OF_MODE)}, got {sorted(unknown)}')
        check_channel_order(channel_order)
        check_encode_batch(encode_batch)
        if export_score_thr is not None and (isinstance(export_score_thr, bool) or
                                             not isinstance(export_score_thr, (int, float))):
            raise ValueError('export_score_thr is a score (instances under it are not exported) '
                             f'or None (export all), got {export_score_thr!r}')
        self._refiner_cfg = refiner
        self._refiner = refiner if isinstance(refiner, torch.nn.Module) else None
        self.device = device
        self.modes = tuple(modes)
        self.score_thr = score_thr
        self.keep_coarse = keep_coarse
        self.out_dir = out_dir
        self.export_score_thr = export_score_thr
        self.classes = classes
        self.background = background
        self.ignore_index = ignore_index
        self.refine_pseudo_labels = refine_pseudo_labels
        self.channel_order = channel_order
        self.encode_batch = encode_batch
        self.report: dict = {}
        self._counts = LoopCounts()
        self._export: Optional[PseudoLabelExport] = None
        self._predictions: Optional[PredictionRefiner] = None
        self._refiner_digest: Optional[str] = None
        self._teacher_refiner: Optional[TeacherMaskRefiner] = None
        install_runner_checkpoints(force_import=True)  # before the Runner loads a checkpoint

    def options(self) -> RefineOptions:
        """The refinement settings, as a loop starting now uses them."""
        return RefineOptions(score_thr=self.score_thr, keep_coarse=self.keep_coarse,
                             classes=self.classes, background=self.background,
                             ignore_index=self.ignore_index, channel_order=self.channel_order,
                             encode_batch=self.encode_batch)

    # -- the refiner ----------------------------------------------------------
    def refiner(self, runner=None):
        """The refiner, built on first use; with ``runner`` (at a loop's start)
        also moved to ``device`` (default: the model's) and set to eval."""
        if self._refiner is None:
            self._refiner = build_in_scope(self._refiner_cfg)
        if runner is not None:
            device = self.device or next(iter(runner.model.parameters()),
                                         torch.empty(0)).device
            self._refiner.to(device).eval()
        return self._refiner

    def _fingerprint(self) -> str:
        """The refiner's fingerprint (computed once), the key's ``refiner``."""
        if self._refiner_digest is None:
            self._refiner_digest = fingerprint_of(self.refiner())
        return self._refiner_digest

    def _export_dir(self, runner) -> Optional[str]:
        if self.out_dir is None:
            return None
        return self.out_dir if osp.isabs(self.out_dir) else osp.join(runner.work_dir, self.out_dir)

    # -- val / test -----------------------------------------------------------
    def before_val(self, runner) -> None:
        self._start(runner, 'val')

    def before_test(self, runner) -> None:
        self._start(runner, 'test')

    def after_val(self, runner) -> None:
        self._finish(runner, 'val')

    def after_test(self, runner) -> None:
        self._finish(runner, 'test')

    def _start(self, runner, mode: str) -> None:
        if mode not in self.modes:
            return
        refiner = self.refiner(runner)
        options = self.options()
        self._counts = LoopCounts()
        self._export = None
        if self.out_dir is not None:
            dataset = getattr(runner, f'{mode}_loop').dataloader.dataset
            self._export = PseudoLabelExport(
                self._export_dir(runner), dataset, self._fingerprint(), options,
                self._counts, reuse=mode == 'test',  # val never reuses: see the docstring
                export_score_thr=self.export_score_thr, write_behind=EXPORT_WRITE_BEHIND)
        self._predictions = PredictionRefiner(refiner, options, self._counts, self._export)
        wrap_step(runner.model, mode, self._predictions.refine_batch)

    def _finish(self, runner, mode: str) -> None:
        if mode not in self.modes:
            return
        unwrap_step(runner.model, mode)
        if self._export is not None:
            self._export.finish(runner.logger)
        self.report = summarize(self._counts, mode)
        log_report(runner.logger, self.report, self.score_thr, self._export_dir(runner),
                   reuses=self._export is not None and self._export.reuse)

    # -- semi-supervised training --------------------------------------------
    def before_train(self, runner) -> None:
        """With ``refine_pseudo_labels``: refuse a model whose student cannot
        learn refined masks, else put the teacher's mask refiner in place."""
        if not self.refine_pseudo_labels:
            return
        self.refiner(runner)
        self._teacher_refiner = attach_mask_refiner(runner.model, self)
        runner.logger.info("SAMRefinerHook: refining the teacher's pseudo-masks "
                           f'(score_thr={self.score_thr})')

    def after_train(self, runner) -> None:
        refiner = self._teacher_refiner
        if refiner is not None:
            runner.logger.info(f"SAMRefinerHook: refined {refiner.num_refined} of the teacher's "
                               f'pseudo-masks in {refiner.num_images} unlabeled images')


def _count_property(name: str) -> property:
    return property(lambda self: getattr(self._counts, name),
                    doc=f'``{name}`` of the last loop, this process (see ``report``).')


for _name in LoopCounts.NAMES + ('stale_reasons', ):
    setattr(SAMRefinerHook, _name, _count_property(_name))
