# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""What one val/test loop of :class:`SAMRefinerHook` did: counts and log lines.

:class:`LoopCounts` is filled while the loop runs (by the
:class:`~mmsamrefiner.engine.prediction_refiner.PredictionRefiner` and the
:class:`~mmsamrefiner.engine.pseudo_label_export.PseudoLabelExport`);
:func:`summarize` sums it over the ranks at the loop's end and :func:`log_report`
writes the lines users read.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce

#: Why an export was stale: its record's key is of another version (written by
#: another release of the hook), a key field differs, the export has no record
#: (an interrupted write, an export of an older release or of another tool), or
#: the key matches but the files do not (changed, removed or unreadable since).
#: The key fields are those of :data:`~.pseudo_label_export.KEY_FIELDS`.
STALE_REASONS = ('version', 'prediction', 'image', 'refiner', 'settings', 'unrecorded',
                 'damaged')
_REASON_TEXT = dict(version='key of another version', unrecorded='no record',
                    damaged='files changed since written')


@dataclass
class LoopCounts:
    """One process's counts of a loop."""
    num_refined: int = 0  # images SAM refined something in
    # images kept as predicted: no instance over score_thr (mmdet), no class to refine (mmseg)
    num_nothing_to_refine: int = 0
    num_resumed: int = 0  # images read back from a matching export
    num_stale: int = 0  # exports found whose key did not match: recomputed
    num_instances_refined: int = 0  # mmdet: sent to SAM
    num_instances_reused: int = 0  # mmdet: over score_thr in images read back
    num_instances_skipped: int = 0  # mmdet: under score_thr, kept as predicted
    num_det_images: int = 0  # mmdet images seen (refined or read back)
    stale_reasons: Dict[str, int] = field(
        default_factory=lambda: {reason: 0 for reason in STALE_REASONS})

    #: the integer counts, in the order :func:`summarize` reduces them
    NAMES = ('num_refined', 'num_nothing_to_refine', 'num_resumed', 'num_stale',
             'num_instances_refined', 'num_instances_reused', 'num_instances_skipped',
             'num_det_images')


def summarize(counts: LoopCounts, mode: str) -> dict:
    """``counts`` summed over the ranks (a no-op in one process), as a dict of
    the :data:`LoopCounts.NAMES`, ``stale_reasons`` (those that occurred) and
    ``mode``."""
    reasons = tuple(counts.stale_reasons)
    values = torch.tensor([getattr(counts, n) for n in LoopCounts.NAMES] +
                          [counts.stale_reasons[r] for r in reasons], dtype=torch.int64)
    all_reduce(values)
    values = values.tolist()
    report = dict(zip(LoopCounts.NAMES, values[:len(LoopCounts.NAMES)]))
    report['stale_reasons'] = {r: c for r, c in zip(reasons, values[len(LoopCounts.NAMES):]) if c}
    report['mode'] = mode
    return report


def log_report(logger, report: dict, score_thr: float, export_dir: Optional[str] = None,
               reuses: bool = False) -> None:
    """Log a loop's :func:`summarize` d report: images refined / with nothing
    to refine / reused / stale (with why) and, for mmdet, instances refined /
    skipped by ``score_thr``, with a warning when none was refined.
    ``export_dir``: where exports went (None: no export); ``reuses``: whether
    the loop may read exports back.

    The counts add up: every image of the loop is refined (SAM refined
    something in it), has nothing to refine (kept as predicted: mmdet, no
    instance scored at least ``score_thr``, none at all included; mmseg, no
    class to refine) or is reused.
    """
    mode = report['mode']
    prefix = f'SAMRefinerHook ({mode}):'
    images = report['num_refined'] + report['num_nothing_to_refine'] + report['num_resumed']
    line = (f'{prefix} {images} images: {report["num_refined"]} refined, '
            f'{report["num_nothing_to_refine"]} with nothing to refine (kept as predicted), '
            f'{report["num_resumed"]} reused from a previous run')
    if export_dir is not None:
        line += f' (exports in {export_dir})'
        if report['num_stale']:
            why = ', '.join(f'{_REASON_TEXT.get(r, r + " differs")}: {c}'
                            for r, c in report['stale_reasons'].items())
            line += (f'; {report["num_stale"]} earlier exports were stale ({why}) and '
                     'were recomputed and overwritten')
        if not reuses:
            line += f'; the {mode} loop never reuses exports'
    logger.info(line)
    if not report['num_det_images']:
        return
    passed = report['num_instances_refined'] + report['num_instances_reused']
    line = (f'{prefix} instances: {report["num_instances_refined"]} refined, '
            f'{report["num_instances_skipped"]} skipped by score_thr={score_thr}')
    if report['num_instances_reused']:
        line += f', {report["num_instances_reused"]} read back refined'
    logger.info(line)
    if passed == 0:
        if report['num_instances_skipped']:
            logger.warning(f'{prefix} score_thr={score_thr} let no instance through: '
                           f'nothing was refined ({report["num_instances_skipped"]} instances '
                           'predicted, all scored under it)')
        else:
            logger.warning(f'{prefix} the model predicted no instance: nothing was refined')

