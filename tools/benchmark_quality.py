#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refinement quality on held-out generated scenes, per kind of coarse-mask defect.

Method
------
* Scenes: ``--scenes`` scenes from :func:`mmsamrefiner.synthetic.make_scene`
  with seeds ``--seed``, ``--seed + 1``, ... (the toy SAM trains on seeds drawn
  from another generator, so these are held out), ``--height`` x ``--width``
  pixels (larger than the toy SAM's input, so the resize path is exercised).
* Coarse masks: each object's true (visible) mask spoiled by one defect of
  :data:`mmsamrefiner.synthetic.defects.DEFECTS` (dilation, erosion, jittered or
  simplified boundary, holes, missing part, spurious fragments, 28x28 upsampled,
  box), ``--amount`` pixels strong, each kind reported on its own; plus a
  ``semantic`` kind: one label map per scene in which all objects share one
  class (occluding objects touch), each spoiled by a random defect, refined
  through split-then-merge.
* Rows: the coarse masks; SAM with a single prompt (box only, positive point
  only, mask only; one round); SAMRefiner with the reference defaults; with the
  elastic box (margin 0.1).  One image embedding per scene is shared by all rows.
* Metrics: mean over masks of the IoU and of the boundary IoU (Cheng et al.
  2021, dilation ratio 0.02) against the true masks; for ``semantic``, per image
  of the class mask.  ``overall`` is the mean over kinds.

Deterministic: the same arguments give the same table.  Writes
``quality.md`` and ``quality.json`` to ``--out-dir``::

    python tools/benchmark_quality.py            # toy SAM, 40 scenes
"""
import argparse
import json
import os
import os.path as osp
import time
from collections import defaultdict

import numpy as np
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.evaluation import boundary_iou, mask_iou
from mmsamrefiner.refiner.sam import SAM_CHECKPOINT_URLS, build_sam
from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.synthetic.defects import DEFECTS, make_coarse_mask

#: Row name -> SAMRefiner settings (None: the coarse masks themselves).
ROWS = {
    'coarse': None,
    'SAM, box only': dict(iters=1, use_point=False, use_mask=False),
    'SAM, point only': dict(iters=1, use_box=False, use_mask=False, add_neg=False),
    'SAM, mask only': dict(iters=1, use_point=False, use_box=False),
    'SAMRefiner': dict(),
    'SAMRefiner, elastic box (margin 0.1)': dict(margin=0.1),
}
KINDS = DEFECTS + ('semantic',)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='toy')
    parser.add_argument('--checkpoint', default=None,
                        help="default: the shipped checkpoint of --arch; 'none': random")
    parser.add_argument('--scenes', type=int, default=40)
    parser.add_argument('--seed', type=int, default=10_000_000)
    parser.add_argument('--height', type=int, default=288)
    parser.add_argument('--width', type=int, default=384)
    parser.add_argument('--amount', type=int, default=5, help='defect size in pixels')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_quality')
    return parser.parse_args()


def semantic_case(scene, rng, amount):
    """(true, coarse) (H, W) bool class masks: all objects share one class."""
    truth = scene.masks.any(0)
    kinds = rng.choice(DEFECTS, len(scene.masks))
    coarse = np.zeros_like(truth)
    for mask, kind in zip(scene.masks, kinds):
        coarse |= make_coarse_mask(mask, str(kind), amount, rng)
    return truth, coarse


def run(args):
    checkpoint = args.checkpoint or SAM_CHECKPOINT_URLS.get(args.arch)
    if checkpoint == 'none':  # random weights, to try the script
        checkpoint = None
    sam = build_sam(args.arch, checkpoint).to(args.device)
    refiners = {name: SAMRefiner(sam, **cfg) for name, cfg in ROWS.items() if cfg is not None}
    ious = defaultdict(list)  # (row, kind) -> per-mask IoUs
    bious = defaultdict(list)
    start = time.perf_counter()
    for index in range(args.scenes):
        seed = args.seed + index
        scene = make_scene(seed=seed, height=args.height, width=args.width, num_objects=4)
        rng = np.random.default_rng(seed)
        embedding = refiners['SAMRefiner'].encode_image(scene.image)
        for kind in KINDS:
            if kind == 'semantic':
                truth, coarse = semantic_case(scene, rng, args.amount)
                truth, coarse = truth[None], coarse[None]
            else:
                truth = scene.masks
                coarse = np.stack([make_coarse_mask(m, kind, args.amount, rng)
                                   for m in scene.masks])
            for row, refiner in [('coarse', None)] + list(refiners.items()):
                if refiner is None:
                    pred = coarse
                elif kind == 'semantic':
                    label_map = refiner.refine_semantic(
                        None, coarse[0].astype(np.uint8), image_embedding=embedding)
                    pred = (label_map == 1)[None]
                else:
                    pred = refiner.refine(None, coarse, image_embedding=embedding).masks
                ious[row, kind].extend(mask_iou(pred, truth))
                bious[row, kind].extend(boundary_iou(pred, truth))
        if (index + 1) % 10 == 0 or index + 1 == args.scenes:
            elapsed = time.perf_counter() - start
            print(f'[{index + 1}/{args.scenes}] {elapsed:.0f} s, '
                  f'ETA {elapsed / (index + 1) * (args.scenes - index - 1):.0f} s', flush=True)

    table = {}
    for row in ROWS:
        entry = {}
        for kind in KINDS:
            entry[kind] = dict(miou=float(np.mean(ious[row, kind])),
                               biou=float(np.mean(bious[row, kind])),
                               count=len(ious[row, kind]))
        entry['overall'] = dict(miou=float(np.mean([entry[k]['miou'] for k in KINDS])),
                                biou=float(np.mean([entry[k]['biou'] for k in KINDS])))
        table[row] = entry
    return table


def markdown(table, metric: str, title: str) -> str:
    columns = list(KINDS) + ['overall']
    lines = [f'**{title}**', '', '| | ' + ' | '.join(columns) + ' |',
             '| --- |' + ' ---: |' * len(columns)]
    for row, entry in table.items():
        cells = [f"{100 * entry[c][metric]:.1f}" for c in columns]
        lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def verdict(table) -> str:
    """The expectations of the benchmark, checked and written down."""
    ref, coarse = table['SAMRefiner'], table['coarse']
    singles = [r for r in table if r.startswith('SAM,')]
    best_single = max(singles, key=lambda r: table[r]['overall']['miou'])
    lines = [
        f"SAMRefiner vs coarse, overall: mIoU {100 * (ref['overall']['miou'] - coarse['overall']['miou']):+.1f}, "
        f"boundary IoU {100 * (ref['overall']['biou'] - coarse['overall']['biou']):+.1f} points",
        f"SAMRefiner vs the best single prompt ({best_single}): mIoU "
        f"{100 * (ref['overall']['miou'] - table[best_single]['overall']['miou']):+.1f} points",
    ]
    worse = [k for k in KINDS if ref[k]['miou'] < coarse[k]['miou']]
    lines.append('kinds SAMRefiner makes worse (mIoU): ' + (', '.join(worse) or 'none'))
    return '\n'.join(lines)


def main():
    args = parse_args()
    table = run(args)
    report = '\n\n'.join([
        markdown(table, 'miou', 'mIoU (%)'),
        markdown(table, 'biou', 'Boundary IoU (%)'),
        verdict(table)])
    print(report)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'quality.md'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(args.out_dir, 'quality.json'), 'w') as f:
        json.dump(dict(settings=vars(args), table=table), f, indent=1)
    print(f'wrote {args.out_dir}/quality.md and quality.json')


if __name__ == '__main__':
    main()
