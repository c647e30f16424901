#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""How well each signal of a refined mask tells the masks that refinement
made worse from the others.

Method
------
* Instances: ``--scenes`` scenes of :func:`mmsamrefiner.synthetic.make_scene`
  (seeds ``--seed`` ...; ``--height`` x ``--width``, ``--objects`` objects),
  each object's true mask spoiled by each defect of
  :data:`mmsamrefiner.synthetic.defects.DEFECTS` in turn (``--amount``
  pixels), as in ``tools/benchmark_quality.py``; refined by the default
  ``SAMRefiner`` (one embedding per scene).  One row per mask: its IoU with
  the true mask before and after refinement, and its signals
  (:class:`mmsamrefiner.refiner.RefineResult`): ``score`` (SAM's predicted
  IoU), ``stability`` (SAM's stability score), ``coarse_iou`` (IoU of the
  refined with the coarse mask).
* Label maps: per scene one map in which every object has its scene class
  and a random defect, and ``--case-scenes`` maps of each layout of
  :func:`mmsamrefiner.synthetic.make_class_scene` (1, 2, 4 objects of one
  class, apart or touching, one cut by an occluder; seeds ``--seed +
  1_000_000`` ...); refined by ``refine_label_map``.  One row per map and
  refined class: the class mask's IoU with the truth before and after, and
  the class's signals (its table: the lowest ``score`` and ``stability`` of
  its instances, ``coarse_iou`` of the class mask).
* A row is **worse** when its IoU with the truth after refinement is lower
  than before.  Per signal, the AUROC of the signal ranking the not-worse
  rows above the worse ones (the Mann-Whitney statistic, ties counted half;
  0.5: no better than chance; under 0.5: the signal is *higher* on worse
  rows), and of the signals combined: a logistic regression on the three
  signals, each row scored by the model fitted on the other folds
  (``--folds``, rows dealt to folds in order), so that no row is scored by
  a model that saw it.  The same for **much worse** rows (IoU lower by more
  than ``--margin``) against the others.
* Fallback: with a signal under a threshold, keep the coarse mask instead of
  the refined one.  For each signal, the threshold that maximises the mean
  IoU of the rows (``--thresholds``) is reported with that mean, next to
  the refined masks' mean and the oracle's (the better of coarse and refined
  per row).  Choose thresholds on one set of seeds and check them on
  another (``--seed``, with ``--check SIGNAL=THRESHOLD``, which reports
  the mean IoU of that rule on these rows).

Deterministic (the same arguments give the same table).  Writes
``signals.md`` and ``signals.json`` to ``--out-dir``::

    python tools/benchmark_signals.py                        # toy SAM
    python tools/benchmark_signals.py --seed 50000000 --height 352 --width 448 --objects 6
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.evaluation import mask_iou
from mmsamrefiner.refiner.sam import SAM_CHECKPOINT_URLS, build_sam
from mmsamrefiner.synthetic import make_class_scene, make_scene
from mmsamrefiner.synthetic.defects import DEFECTS, make_coarse_mask

SIGNALS = ('score', 'stability', 'coarse_iou')
#: label-map layouts of make_class_scene: (objects, layout)
LAYOUTS = ((1, 'apart'), (2, 'apart'), (2, 'touching'), (4, 'apart'), (4, 'touching'),
           (1, 'occluded'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='toy')
    parser.add_argument('--checkpoint', default=None,
                        help="SAM checkpoint (default: the arch's; 'none': random weights)")
    parser.add_argument('--scenes', type=int, default=40)
    parser.add_argument('--seed', type=int, default=10_000_000)
    parser.add_argument('--height', type=int, default=288)
    parser.add_argument('--width', type=int, default=384)
    parser.add_argument('--objects', type=int, default=4)
    parser.add_argument('--amount', type=int, default=5, help='defect size in pixels')
    parser.add_argument('--case-scenes', type=int, default=10,
                        help='label maps per make_class_scene layout')
    parser.add_argument('--thresholds', type=float, nargs='+',
                        default=[round(0.05 * k, 2) for k in range(20)])
    parser.add_argument('--check', nargs='*', default=[], metavar='SIGNAL=THRESHOLD',
                        help='fallback rules chosen elsewhere to measure on these rows, '
                             'e.g. stability=0.85')
    parser.add_argument('--margin', type=float, default=0.05,
                        help='a row is much worse when its IoU drops by more than this')
    parser.add_argument('--folds', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=1, help="torch's CPU threads")
    parser.add_argument('--out-dir', default='work_dirs/benchmark_signals')
    return parser.parse_args(argv)


def auroc(values: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive row's value > a negative row's), ties counted half (NaN
    without both kinds of row)."""
    values, positive = np.asarray(values, np.float64), np.asarray(positive, bool)
    count_pos, count_neg = int(positive.sum()), int((~positive).sum())
    if count_pos == 0 or count_neg == 0:
        return float('nan')
    ranks = rank_average(values)
    return float((ranks[positive].sum() - count_pos * (count_pos + 1) / 2) /
                 (count_pos * count_neg))


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing their mean rank."""
    order = np.argsort(values, kind='stable')
    sorted_values = values[order]
    ranks = np.empty(len(values), np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def fit_logistic(features: np.ndarray, target: np.ndarray, steps: int = 50,
                 ridge: float = 1e-3) -> np.ndarray:
    """Weights (F + 1,) of a logistic regression of the (R,) bool ``target``
    on (R, F) ``features`` (Newton steps, a small ridge; last weight: the
    bias)."""
    x = np.concatenate([features, np.ones((len(features), 1))], 1)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (p - target) + ridge * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def combined(rows: dict, target: np.ndarray, folds: int) -> np.ndarray:
    """Each row's out-of-fold logistic-regression score of ``target`` on
    :data:`SIGNALS` (rows dealt to ``folds`` folds in order)."""
    features = np.stack([np.asarray(rows[name], np.float64) for name in SIGNALS], 1)
    fold = np.arange(len(target)) % folds
    scores = np.zeros(len(target))
    for k in range(folds):
        train = fold != k
        w = fit_logistic(features[train], target[train].astype(np.float64))
        scores[~train] = features[~train] @ w[:-1] + w[-1]
    return scores


def fallback(rows: dict, name: str, threshold: float) -> float:
    """Mean IoU with the truth when rows whose ``name`` signal is under
    ``threshold`` keep their coarse mask."""
    low = np.asarray(rows[name]) < threshold
    return float(np.mean(np.where(low, rows['iou_coarse'], rows['iou_refined'])))


def instance_rows(refiner, scene, rng, amount, rows):
    embedding = refiner.encode_image(scene.image)
    for kind in DEFECTS:
        coarse = np.stack([make_coarse_mask(m, kind, amount, rng) for m in scene.masks])
        result = refiner.refine(None, coarse, image_embedding=embedding)
        keep = ~result.empty
        rows['iou_coarse'].extend(mask_iou(coarse[keep], scene.masks[keep]))
        rows['iou_refined'].extend(mask_iou(result.masks[keep], scene.masks[keep]))
        for name in SIGNALS:
            rows[name].extend(getattr(result, 'scores' if name == 'score' else name)[keep])
        rows['kind'].extend([kind] * int(keep.sum()))


def label_map_rows(refiner, scene, rng, amount, rows, kind):
    """Rows of one label map whose objects carry ``scene.labels``."""
    coarse_map = np.zeros(scene.image.shape[:2], np.uint8)
    true_map = np.zeros_like(coarse_map)
    defects = rng.choice(DEFECTS, len(scene.masks))
    for mask, label, defect in zip(scene.masks, scene.labels, defects):
        coarse_map[make_coarse_mask(mask, str(defect), amount, rng)] = label
        true_map[mask] = label
    result = refiner.refine_label_map(scene.image, coarse_map)
    for row, cls in enumerate(result.classes['class']):
        truth = (true_map == cls)[None]
        rows['iou_coarse'].append(float(mask_iou((coarse_map == cls)[None], truth)[0]))
        rows['iou_refined'].append(float(mask_iou((result.label_map == cls)[None], truth)[0]))
        for name in SIGNALS:
            rows[name].append(float(result.classes[name][row]))
        rows['kind'].append(kind)


def measure(args):
    checkpoint = args.checkpoint or SAM_CHECKPOINT_URLS.get(args.arch)
    if checkpoint == 'none':
        checkpoint = None
    refiner = SAMRefiner(build_sam(args.arch, checkpoint).to(args.device))
    tables = {'instances': _empty_rows(), 'label maps': _empty_rows()}
    start = time.perf_counter()
    for index in range(args.scenes):
        seed = args.seed + index
        scene = make_scene(seed=seed, height=args.height, width=args.width,
                           num_objects=args.objects)
        rng = np.random.default_rng(seed)
        instance_rows(refiner, scene, rng, args.amount, tables['instances'])
        label_map_rows(refiner, scene, rng, args.amount, tables['label maps'], 'random scene')
        if (index + 1) % 10 == 0:
            print(f'[{index + 1}/{args.scenes}] {time.perf_counter() - start:.0f} s', flush=True)
    for objects, layout in LAYOUTS:
        for index in range(args.case_scenes):
            seed = args.seed + 1_000_000 + index
            scene = make_class_scene(seed, args.height, args.width, objects, layout)
            label_map_rows(refiner, scene, np.random.default_rng(seed), args.amount,
                           tables['label maps'], f'{objects} {layout}')
    for rows in tables.values():
        rows['worse'] = list(np.asarray(rows['iou_refined']) < np.asarray(rows['iou_coarse']))
    return tables


def _empty_rows():
    return {name: [] for name in ('iou_coarse', 'iou_refined', 'kind') + SIGNALS}


def summarize(rows: dict, thresholds, margin: float, folds: int) -> dict:
    worse = np.asarray(rows['worse'], bool)
    much_worse = np.asarray(rows['iou_refined']) < np.asarray(rows['iou_coarse']) - margin
    summary = dict(rows=len(worse), worse=int(worse.sum()), much_worse=int(much_worse.sum()),
                   mean_iou_coarse=float(np.mean(rows['iou_coarse'])),
                   mean_iou_refined=float(np.mean(rows['iou_refined'])),
                   mean_iou_oracle=float(np.mean(np.maximum(rows['iou_coarse'],
                                                            rows['iou_refined']))))
    for key, flagged in (('auroc', worse), ('auroc_much_worse', much_worse)):
        summary[key] = {name: auroc(rows[name], ~flagged) for name in SIGNALS}
        summary[key]['combined'] = auroc(combined(rows, ~flagged, folds), ~flagged)
    summary['fallback'] = {}
    for name in SIGNALS:
        means = [fallback(rows, name, t) for t in thresholds]
        best = int(np.argmax(means))
        summary['fallback'][name] = dict(threshold=thresholds[best], mean_iou=means[best],
                                         kept_coarse=int((np.asarray(rows[name]) <
                                                          thresholds[best]).sum()))
    return summary


def check_rules(tables: dict, rules) -> dict:
    """Mean IoU of each ``SIGNAL=THRESHOLD`` fallback rule, per table."""
    checked = {}
    for rule in rules:
        name, threshold = rule.split('=')
        if name not in SIGNALS:
            raise SystemExit(f'--check: unknown signal {name!r} (one of {SIGNALS})')
        checked[rule] = {table: dict(mean_iou=fallback(rows, name, float(threshold)),
                                     kept_coarse=int((np.asarray(rows[name]) <
                                                      float(threshold)).sum()))
                         for table, rows in tables.items()}
    return checked


def markdown(summaries: dict, checked: dict) -> str:
    lines = ['| rows | count | flagged | AUROC score | AUROC stability | AUROC coarse IoU | '
             'AUROC combined |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for name, s in summaries.items():
        for key, flagged in (('auroc', 'worse'), ('auroc_much_worse', 'much_worse')):
            a = s[key]
            lines.append(f"| {name} | {s['rows']} | {s[flagged]} {flagged.replace('_', ' ')} | "
                         f"{a['score']:.3f} | {a['stability']:.3f} | {a['coarse_iou']:.3f} | "
                         f"{a['combined']:.3f} |")
    lines += ['', '| rows | mean IoU refined | best fallback (signal < threshold: coarse kept) '
              '| mean IoU | coarse kept | oracle |', '| --- | ---: | --- | ---: | ---: | ---: |']
    for name, s in summaries.items():
        for signal, f in s['fallback'].items():
            lines.append(f"| {name} | {100 * s['mean_iou_refined']:.1f} | {signal} < "
                         f"{f['threshold']:.2f} | {100 * f['mean_iou']:.1f} | "
                         f"{f['kept_coarse']} | {100 * s['mean_iou_oracle']:.1f} |")
    for rule, results in checked.items():
        for name, result in results.items():
            s = summaries[name]
            lines.append(f"| {name} | {100 * s['mean_iou_refined']:.1f} | {rule} (given) | "
                         f"{100 * result['mean_iou']:.1f} | {result['kept_coarse']} | "
                         f"{100 * s['mean_iou_oracle']:.1f} |")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        tables = measure(args)
    finally:
        torch.set_num_threads(threads)
    summaries = {name: summarize(rows, args.thresholds, args.margin, args.folds)
                 for name, rows in tables.items()}
    checked = check_rules(tables, args.check)
    report = markdown(summaries, checked)
    print(report)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'signals.md'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(args.out_dir, 'signals.json'), 'w') as f:
        json.dump(dict(settings=vars(args), summaries=summaries, checked=checked,
                       rows={name: {k: [v if isinstance(v, str) else float(v) for v in vs]
                                    for k, vs in rows.items()}
                             for name, rows in tables.items()}), f)
    print(f'wrote {args.out_dir}/signals.md and signals.json')
    return summaries


if __name__ == '__main__':
    main()
