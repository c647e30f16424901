#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refinement quality on held-out generated scenes, per kind of coarse-mask
defect, with the paper's ablations in miniature.

Method
------
* Scenes: ``--scenes`` scenes from :func:`mmsamrefiner.synthetic.make_scene`
  with seeds ``--seed``, ``--seed + 1``, ... (the toy SAM trains on seeds drawn
  from another generator, so these are held out), ``--height`` x ``--width``
  pixels (larger than the toy SAM's input, so the resize path is exercised),
  ``--objects`` objects each.
* Coarse masks: each object's true (visible) mask spoiled by one defect of
  :data:`mmsamrefiner.synthetic.defects.DEFECTS` (dilation, erosion, jittered or
  simplified boundary, holes, missing part, spurious fragments, 28x28 upsampled,
  box), ``--amount`` pixels strong, each kind reported on its own; plus a
  ``semantic`` kind: one label map per scene in which all objects share one
  class (occluding objects touch), each spoiled by a random defect, refined
  through split-then-merge (each row's refiner, so the default
  ``stm='residual'``).
* Rows (:data:`ROWS`): the coarse masks; SAM with a single prompt; the prompt
  ablation (P = the mined positive and negative points, B = the box, M = the
  Gaussian mask prompt, one round each); SAMRefiner (all prompts) after 1, 3
  and 5 rounds; the elastic box (``elastic_margin`` 0.1) with the authors'
  geometry (the default) and with ``box_geometry='symmetric'``; SAMRefiner++: SAMRefiner
  with an IoU adapter trained by ``tools/adapt.py`` (the toy adapter config,
  authors' settings) on ``--adapt-scenes`` other scenes (seeds from
  ``--adapt-seed``) and their coarse masks only, no ground truth, as a user
  would (``--adapt-scenes 0`` skips it).  One image embedding per scene is
  shared by all rows.
* Semantic cases (:data:`CASES`): ``--case-scenes`` label maps per case from
  :func:`mmsamrefiner.synthetic.make_class_scene` (seeds ``--seed +
  1_000_000 + i``, same size): 1, 2 and 4 objects of one class apart or
  touching, and one object cut by an occluding bar; each object spoiled by
  a random defect as in ``semantic``; plus the ``semantic`` maps of the
  scenes above.  Refined by the default SAMRefiner with the authors'
  split-then-merge (``stm='authors'``) and with the default
  (``stm='residual'``); and, as an upper reference, the per-object oracle:
  each object's own coarse mask refined as an instance.  Besides mIoU and
  boundary IoU: objects lost (coarse recall > 0.5, refined recall < 0.2)
  with their cause in the authors' split (the object's main coarse fragment,
  the one holding most of it, also holds another object: ``touching``; it
  is grouped with another object's fragment: ``grouped``; else ``alone``),
  8-connected coarse fragments of at least 5 pixels and the authors'
  instances per map, SAM decoder calls and masks decoded per map, and the
  time of ``refine_semantic`` per map (the image embedding given; the
  image encoder's time per map beside it).
* Metrics: mean over masks of the IoU and of the boundary IoU (Cheng et al.
  2021, dilation ratio 0.02) against the true masks; for ``semantic``, per image
  of the class mask.  ``overall`` is the mean over kinds.  For the IoU
  adapter also the top-1 accuracy on the held-out scenes' instance kinds:
  how often the candidate SAM scores highest (plain and adapted) is the one
  of the three closest to the true mask, for the prompts of the first
  refinement round (points + box + mask, mined from the coarse mask), and
  for the box-only prompts that adapter training uses.

Deterministic: the same arguments give the same table (the times aside).
Torch runs on ``--threads`` CPU threads.  Writes ``quality.md`` and
``quality.json`` to ``--out-dir``::

    python tools/benchmark_quality.py            # toy SAM, 40 scenes
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.evaluation import boundary_iou, mask_iou
from mmsamrefiner.refiner.iou_adapter import IoUAdapter
from mmsamrefiner.refiner.sam import SAM_CHECKPOINT_URLS, build_sam
from mmsamrefiner.refiner.stm import fragments, group_fragments
from mmsamrefiner.synthetic import make_class_scene, make_scene
from mmsamrefiner.synthetic.coco_collection import write_coco_collection
from mmsamrefiner.synthetic.defects import DEFECTS, make_coarse_mask

ONE_ROUND = dict(iters=1)
#: Row name -> SAMRefiner settings (None: the coarse masks themselves;
#: 'adapted': the default SAMRefiner with the trained IoU adapter).
ROWS = {
    'coarse': None,
    'SAM, box only': dict(ONE_ROUND, use_point=False, use_mask=False),
    'SAM, positive point only': dict(ONE_ROUND, use_box=False, use_mask=False, add_neg=False),
    'SAM, mask only': dict(ONE_ROUND, use_point=False, use_box=False),
    'P, 1 round': dict(ONE_ROUND, use_box=False, use_mask=False),
    'P+B, 1 round': dict(ONE_ROUND, use_mask=False),
    'P+M, 1 round': dict(ONE_ROUND, use_box=False),
    'B+M, 1 round': dict(ONE_ROUND, use_point=False),
    'P+B+M, 1 round': dict(ONE_ROUND),
    'P+B+M, 3 rounds': dict(iters=3),
    'SAMRefiner': dict(),
    'SAMRefiner, elastic box 0.1': dict(elastic_margin=0.1),
    'SAMRefiner, elastic box 0.1, symmetric geometry': dict(
        elastic_margin=0.1, box_geometry='symmetric'),
    'SAMRefiner++ (IoU adapter)': 'adapted',
}
#: Rows of the per-kind table; every row is in the ablation table.
MAIN_ROWS = ('coarse', 'SAM, box only', 'SAM, positive point only', 'SAM, mask only',
             'SAMRefiner', 'SAMRefiner, elastic box 0.1', 'SAMRefiner++ (IoU adapter)')
SINGLE_PROMPT_ROWS = ('SAM, box only', 'SAM, positive point only', 'SAM, mask only',
                      'P, 1 round')
KINDS = DEFECTS + ('semantic',)
#: Semantic case -> (objects, layout of make_class_scene); ``semantic`` is the
#: semantic kind's maps of the random scenes.
CASES = {
    '1 object': (1, 'apart'),
    '2 apart': (2, 'apart'),
    '2 touching': (2, 'touching'),
    '4 apart': (4, 'apart'),
    '4 touching': (4, 'touching'),
    '1 object cut by an occluder': (1, 'occluded'),
    'semantic (random scenes)': None,
}
#: Split-then-merge rows of the semantic cases: SAMRefiner settings (None:
#: the coarse map; 'oracle': each object's own coarse mask refined alone).
STM_ROWS = {'coarse': None, "authors' STM": dict(stm='authors'),
            'residual STM (default)': dict(), 'per-object oracle': 'oracle'}
LOST_CAUSES = ('touching', 'grouped', 'alone')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='toy')
    parser.add_argument('--checkpoint', default=None,
                        help="default: the shipped checkpoint of --arch; 'none': random")
    parser.add_argument('--scenes', type=int, default=40)
    parser.add_argument('--seed', type=int, default=10_000_000)
    parser.add_argument('--height', type=int, default=288)
    parser.add_argument('--width', type=int, default=384)
    parser.add_argument('--objects', type=int, default=4, help='objects per random scene')
    parser.add_argument('--amount', type=int, default=5, help='defect size in pixels')
    parser.add_argument('--case-scenes', type=int, default=40,
                        help='label maps per semantic case (0: no semantic cases)')
    parser.add_argument('--adapt-scenes', type=int, default=100,
                        help='training scenes of the IoU adapter (0: no SAMRefiner++ row)')
    parser.add_argument('--adapt-seed', type=int, default=40_000_000)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=1, help="torch's CPU threads")
    parser.add_argument('--out-dir', default='work_dirs/benchmark_quality')
    return parser.parse_args(argv)


def semantic_case(scene, rng, amount):
    """(true, coarse, coarse_objects): (H, W) bool class masks (all objects
    share one class) and each object's own (N, H, W) coarse mask."""
    truth = scene.masks.any(0)
    kinds = rng.choice(DEFECTS, len(scene.masks))
    coarse_objects = np.stack([make_coarse_mask(mask, str(kind), amount, rng)
                               for mask, kind in zip(scene.masks, kinds)])
    return truth, coarse_objects.any(0), coarse_objects


class DecoderCount:
    """Counts a refiner's SAM decoder calls and the masks (prompt sets) they
    decode, by wrapping its backend's ``decode``."""

    def __init__(self, refiner):
        self.calls = self.masks = 0
        decode = refiner.backend.decode

        def counted(embedding, points, labels, boxes, mask_inputs):
            self.calls += 1
            self.masks += len(next(t for t in (points, boxes, mask_inputs) if t is not None))
            return decode(embedding, points, labels, boxes, mask_inputs)

        refiner.backend.decode = counted


def split_diagnosis(objects, coarse):
    """How the authors' split sees one class map.

    Args:
        objects: (N, H, W) bool true (visible) masks of the class's objects.
        coarse: (H, W) bool coarse class mask.

    Returns:
        ``(fragment count, instance count, causes)``: 8-connected fragments of
        at least 5 pixels, the authors' instances (groups) and, per object,
        ``'touching'`` when its main fragment (the one holding most of its
        coarse pixels) is another object's main fragment too, ``'grouped'``
        when another object's main fragment is in its group, else
        ``'alone'`` (``None`` for an object the coarse mask misses).
    """
    labels, boxes, areas = fragments(coarse, 5)
    if len(areas) == 0:
        return 0, 0, [None] * len(objects)
    group = np.concatenate([[-1], group_fragments(boxes, areas)])  # fragment id -> group
    counts = np.stack([np.bincount(labels[mask], minlength=len(areas) + 1)[1:]
                       for mask in objects])
    main = np.where(counts.max(1) > 0, counts.argmax(1) + 1, 0)
    causes = []
    for index, fragment in enumerate(main):
        others = np.delete(main, index)
        others = others[others > 0]
        if fragment == 0:
            causes.append(None)
        elif (others == fragment).any():
            causes.append('touching')
        elif (group[others] == group[fragment]).any():
            causes.append('grouped')
        else:
            causes.append('alone')
    return len(areas), len(np.unique(group[1:])), causes


def lost_objects(objects, coarse, refined):
    """(N,) bool: objects the coarse mask has (recall > 0.5) and the refined
    mask lost (recall < 0.2)."""
    area = objects.reshape(len(objects), -1).sum(1)
    recall = [(objects & mask).reshape(len(objects), -1).sum(1) / area
              for mask in (coarse, refined)]
    return (recall[0] > 0.5) & (recall[1] < 0.2)


def evaluate_case(stm_refiners, counters, stats, case, scene, coarse_objects, embedding):
    """Every split-then-merge row on one class map; adds to ``stats[case,
    row]``."""
    truth, coarse = scene.masks.any(0), coarse_objects.any(0)
    fragment_count, instance_count, causes = split_diagnosis(scene.masks, coarse)
    for row, setting in STM_ROWS.items():
        entry = stats[case, row]
        start = time.perf_counter()
        if setting is None:
            pred = coarse
        elif setting == 'oracle':
            pred = stm_refiners["authors' STM"].refine(
                None, coarse_objects, image_embedding=embedding).masks.any(0)
        else:
            counter = counters[row]
            calls, masks = counter.calls, counter.masks
            pred = stm_refiners[row].refine_semantic(
                None, coarse.astype(np.uint8), image_embedding=embedding) == 1
            entry['decoder_calls'].append(counter.calls - calls)
            entry['decoder_masks'].append(counter.masks - masks)
            entry['seconds'].append(time.perf_counter() - start)
        entry['miou'].append(float(mask_iou(pred[None], truth[None])[0]))
        entry['biou'].append(float(boundary_iou(pred[None], truth[None])[0]))
        lost = lost_objects(scene.masks, coarse, pred)
        entry['objects'].append(len(scene.masks))
        entry['lost'].append(int(lost.sum()))
        for cause in LOST_CAUSES:
            entry[f'lost_{cause}'].append(sum(1 for c, gone in zip(causes, lost)
                                              if gone and c == cause))
        entry['fragments'].append(fragment_count)
        entry['instances'].append(instance_count)


def train_iou_adapter(args, checkpoint, work_dir: str) -> str:
    """Train an IoU adapter with ``tools/adapt.py`` on a generated collection
    of coarse masks (``--adapt-scenes`` scenes); returns the adapter file."""
    data_root = osp.join(work_dir, 'data')
    write_coco_collection(osp.join(data_root, 'coarse'), args.adapt_scenes, True,
                          args.adapt_seed, args.height, args.width, num_objects=4)
    write_coco_collection(osp.join(data_root, 'gt'), args.adapt_scenes, False,
                          args.adapt_seed, args.height, args.width, num_objects=4)
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    sam_checkpoint = checkpoint if checkpoint is not None else 'None'
    command = [
        sys.executable, osp.join(root, 'tools', 'adapt.py'),
        osp.join(root, 'configs', 'samrefiner_pp', 'samrefiner-pp_sam_toy_1xb5-1e_synthetic.py'),
        '--work-dir', osp.join(work_dir, 'adapt'), '--cfg-options',
        f'model.refiner.sam.arch={args.arch}',
        f'model.refiner.sam.checkpoint={sam_checkpoint}',
        f'train_dataloader.dataset.data_root={data_root}/',
        f'val_dataloader.dataset.data_root={data_root}/']
    print('training the IoU adapter:', ' '.join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return osp.join(work_dir, 'adapt', 'iou_adapter.pth')


@torch.no_grad()
def candidate_top1(refiner, adapter, coarse, truth, embedding, box_only: bool):
    """Top-1 hits of one image's first-round candidates, plain and adapted.

    Returns two (N,) bool arrays: whether SAM's highest predicted IoU picks
    the candidate with the highest IoU against ``truth``, without and with
    the refiner's IoU adapter.  Prompts: mined from ``coarse`` as the
    refiner mines them, or tight boxes alone (``box_only``, the adapter's
    training prompts)."""
    masks = torch.from_numpy(coarse).to(refiner.device)
    prompts = refiner.mine(masks, embedding)
    if box_only:
        prompts.points = prompts.labels = prompts.mask_inputs = None
    logits, adapted = refiner.decode(prompts, embedding)
    with adapter.disabled():
        _, plain = refiner.decode(prompts, embedding)
    count, candidates = logits.shape[:2]
    upscaled = refiner.upscale(logits.flatten(0, 1), embedding).cpu().numpy()
    ious = mask_iou(upscaled, np.repeat(truth, candidates, axis=0)).reshape(count, candidates)
    best = ious.argmax(1)
    return (plain.argmax(1).cpu().numpy() == best), (adapted.argmax(1).cpu().numpy() == best)


def run(args):
    """Every row on every scene, with torch on ``args.threads`` threads
    (restored after); returns ``(table, top-1 accuracy, semantic cases)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return measure(args)
    finally:
        torch.set_num_threads(threads)


def measure(args):
    checkpoint = args.checkpoint or SAM_CHECKPOINT_URLS.get(args.arch)
    if checkpoint == 'none':  # random weights, to try the script
        checkpoint = None
    sam = build_sam(args.arch, checkpoint).to(args.device)
    refiners = {name: SAMRefiner(sam, **cfg) for name, cfg in ROWS.items()
                if isinstance(cfg, dict)}
    stm_refiners = {row: SAMRefiner(sam, **cfg) for row, cfg in STM_ROWS.items()
                    if isinstance(cfg, dict)}
    counters = {row: DecoderCount(refiner) for row, refiner in stm_refiners.items()}
    stats = defaultdict(lambda: defaultdict(list))  # (case, STM row) -> name -> per-map values
    adapted = adapter = None
    if args.adapt_scenes:
        with tempfile.TemporaryDirectory() as work_dir:
            adapter = IoUAdapter.load(train_iou_adapter(args, checkpoint, work_dir))
        adapted = SAMRefiner(copy.deepcopy(sam), iou_adapter=adapter)
        refiners['SAMRefiner++ (IoU adapter)'] = adapted
    ious = defaultdict(list)  # (row, kind) -> per-mask IoUs
    bious = defaultdict(list)
    top1 = defaultdict(list)  # (prompts, 'plain' | 'adapted') -> per-mask hits
    start = time.perf_counter()
    for index in range(args.scenes):
        seed = args.seed + index
        scene = make_scene(seed=seed, height=args.height, width=args.width,
                           num_objects=args.objects)
        rng = np.random.default_rng(seed)
        encode_start = time.perf_counter()
        embedding = refiners['SAMRefiner'].encode_image(scene.image)
        stats['semantic (random scenes)', 'coarse']['encoder_seconds'].append(
            time.perf_counter() - encode_start)
        for kind in KINDS:
            if kind == 'semantic':
                truth, coarse, coarse_objects = semantic_case(scene, rng, args.amount)
                truth, coarse = truth[None], coarse[None]
                evaluate_case(stm_refiners, counters, stats, 'semantic (random scenes)', scene,
                              coarse_objects, embedding)
            else:
                truth = scene.masks
                coarse = np.stack([make_coarse_mask(m, kind, args.amount, rng)
                                   for m in scene.masks])
            for row in ROWS:
                refiner = refiners.get(row)
                if ROWS[row] is None:
                    pred = coarse
                elif refiner is None:  # SAMRefiner++ skipped
                    continue
                elif kind == 'semantic':
                    label_map = refiner.refine_semantic(
                        None, coarse[0].astype(np.uint8), image_embedding=embedding)
                    pred = (label_map == 1)[None]
                else:
                    pred = refiner.refine(None, coarse, image_embedding=embedding).masks
                ious[row, kind].extend(mask_iou(pred, truth))
                bious[row, kind].extend(boundary_iou(pred, truth))
            if adapted is not None and kind != 'semantic':
                keep = coarse.reshape(len(coarse), -1).any(1)
                for prompts, box_only in (('refinement prompts', False), ('box only', True)):
                    plain, hit = candidate_top1(adapted, adapter, coarse[keep], truth[keep],
                                                embedding, box_only)
                    top1[prompts, 'plain'].extend(plain)
                    top1[prompts, 'adapted'].extend(hit)
        if (index + 1) % 10 == 0 or index + 1 == args.scenes:
            elapsed = time.perf_counter() - start
            print(f'[{index + 1}/{args.scenes}] {elapsed:.0f} s, '
                  f'ETA {elapsed / (index + 1) * (args.scenes - index - 1):.0f} s', flush=True)
    for case, layout in CASES.items():
        if layout is None:
            continue
        for index in range(args.case_scenes):
            seed = args.seed + 1_000_000 + index
            scene = make_class_scene(seed, args.height, args.width, *layout)
            rng = np.random.default_rng(seed)
            _, _, coarse_objects = semantic_case(scene, rng, args.amount)
            encode_start = time.perf_counter()
            embedding = refiners['SAMRefiner'].encode_image(scene.image)
            stats[case, 'coarse']['encoder_seconds'].append(time.perf_counter() - encode_start)
            evaluate_case(stm_refiners, counters, stats, case, scene, coarse_objects, embedding)
        print(f'semantic case {case}: {time.perf_counter() - start:.0f} s', flush=True)

    table = {}
    for row in ROWS:
        if not ious[row, KINDS[0]]:
            continue
        entry = {}
        for kind in KINDS:
            entry[kind] = dict(miou=float(np.mean(ious[row, kind])),
                               biou=float(np.mean(bious[row, kind])),
                               count=len(ious[row, kind]))
        entry['overall'] = dict(miou=float(np.mean([entry[k]['miou'] for k in KINDS])),
                                biou=float(np.mean([entry[k]['biou'] for k in KINDS])))
        table[row] = entry
    accuracy = {f'{prompts}, {which}': float(np.mean(hits))
                for (prompts, which), hits in top1.items()}
    semantic = {}
    for (case, row), entry in stats.items():
        semantic.setdefault(case, {})[row] = dict(
            maps=len(entry['miou']),
            **{name: float(np.mean(values)) for name, values in entry.items()
               if name not in ('objects', 'lost') and not name.startswith('lost_')},
            objects=int(np.sum(entry['objects'])), lost=int(np.sum(entry['lost'])),
            **{name: int(np.sum(values)) for name, values in entry.items()
               if name.startswith('lost_')})
    return table, accuracy, semantic


def markdown(table, metric: str, title: str) -> str:
    columns = list(KINDS) + ['overall']
    lines = [f'**{title}**', '', '| | ' + ' | '.join(columns) + ' |',
             '| --- |' + ' ---: |' * len(columns)]
    for row in MAIN_ROWS:
        if row in table:
            cells = [f"{100 * table[row][c][metric]:.1f}" for c in columns]
            lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def ablation_markdown(table, accuracy) -> str:
    lines = ['**Ablation (mean over the defect kinds)**', '',
             '| | mIoU (%) | boundary IoU (%) |', '| --- | ---: | ---: |']
    for row, entry in table.items():
        lines.append(f"| {row} | {100 * entry['overall']['miou']:.1f} | "
                     f"{100 * entry['overall']['biou']:.1f} |")
    if accuracy:
        lines += ['', '**IoU adapter: top-1 accuracy of the predicted IoU on held-out '
                  'scenes (%)**', '', '| candidates of | SAM | SAM + IoU adapter |',
                  '| --- | ---: | ---: |']
        for prompts in ('refinement prompts', 'box only'):
            lines.append(f"| {prompts} | {100 * accuracy[f'{prompts}, plain']:.1f} | "
                         f"{100 * accuracy[f'{prompts}, adapted']:.1f} |")
    return '\n'.join(lines)


def semantic_markdown(semantic) -> str:
    """The semantic cases: quality, then the diagnosis and the cost."""
    cases = [case for case in CASES if case in semantic]
    rows = list(STM_ROWS)
    quality = ['**Semantic label maps: mIoU / boundary IoU (%) of the class mask**', '',
               '| case | maps | ' + ' | '.join(rows) + ' |',
               '| --- | ---: |' + ' ---: |' * len(rows)]
    for case in cases:
        cells = [f"{100 * semantic[case][row]['miou']:.1f} / "
                 f"{100 * semantic[case][row]['biou']:.1f}" for row in rows]
        quality.append(f"| {case} | {semantic[case]['coarse']['maps']} | "
                       + ' | '.join(cells) + ' |')
    authors, default = "authors' STM", 'residual STM (default)'
    diagnosis = [
        "**Semantic label maps: the authors' split, objects lost and the cost, per map**", '',
        "| case | objects | coarse fragments | authors' instances | objects lost: authors' "
        "(touching / grouped / alone) | objects lost: default | decoder calls: authors' -> "
        "default | masks decoded: authors' -> default | ms: authors' -> default "
        "(image encoder) |",
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for case in cases:
        a, d = semantic[case][authors], semantic[case][default]
        causes = ' / '.join(str(a[f'lost_{cause}']) for cause in LOST_CAUSES)
        diagnosis.append(
            f"| {case} | {a['objects']} | {a['fragments']:.2f} | {a['instances']:.2f} | "
            f"{a['lost']} ({causes}) | {d['lost']} | {a['decoder_calls']:.1f} -> "
            f"{d['decoder_calls']:.1f} | {a['decoder_masks']:.1f} -> {d['decoder_masks']:.1f} | "
            f"{1000 * a['seconds']:.0f} -> {1000 * d['seconds']:.0f} "
            f"({1000 * semantic[case]['coarse']['encoder_seconds']:.0f}) |")
    return '\n'.join(quality) + '\n\n' + '\n'.join(diagnosis)


def verdict(table, accuracy, semantic=None) -> str:
    """The expectations of the benchmark, checked and written down."""
    ref, coarse = table['SAMRefiner'], table['coarse']
    best_single = max(SINGLE_PROMPT_ROWS, key=lambda r: table[r]['overall']['miou'])
    lines = [
        f"SAMRefiner vs coarse, overall: mIoU "
        f"{100 * (ref['overall']['miou'] - coarse['overall']['miou']):+.1f}, "
        f"boundary IoU {100 * (ref['overall']['biou'] - coarse['overall']['biou']):+.1f} points",
        f"SAMRefiner vs the best single prompt ({best_single}): mIoU "
        f"{100 * (ref['overall']['miou'] - table[best_single]['overall']['miou']):+.1f} points",
    ]
    worse = [k for k in KINDS if ref[k]['miou'] < coarse[k]['miou']]
    lines.append('kinds SAMRefiner makes worse (mIoU): ' + (', '.join(worse) or 'none'))
    if accuracy:
        change = accuracy['refinement prompts, adapted'] - accuracy['refinement prompts, plain']
        lines.append(f'IoU adapter, held-out top-1 accuracy (refinement prompts): '
                     f'{100 * change:+.1f} points')
    lines.append(f"semantic vs coarse: mIoU "
                 f"{100 * (ref['semantic']['miou'] - coarse['semantic']['miou']):+.1f}, "
                 f"boundary IoU "
                 f"{100 * (ref['semantic']['biou'] - coarse['semantic']['biou']):+.1f} points")
    for case, entry in (semantic or {}).items():
        authors, default = entry["authors' STM"], entry['residual STM (default)']
        lines.append(f"{case}: residual vs authors' STM, mIoU "
                     f"{100 * (default['miou'] - authors['miou']):+.1f}, boundary IoU "
                     f"{100 * (default['biou'] - authors['biou']):+.1f} points; objects lost "
                     f"{authors['lost']} -> {default['lost']} of {authors['objects']}")
    return '\n'.join(lines)


def main():
    args = parse_args()
    table, accuracy, semantic = run(args)
    report = '\n\n'.join([
        markdown(table, 'miou', 'mIoU (%)'),
        markdown(table, 'biou', 'Boundary IoU (%)'),
        ablation_markdown(table, accuracy),
        semantic_markdown(semantic),
        verdict(table, accuracy, semantic)])
    print(report)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'quality.md'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(args.out_dir, 'quality.json'), 'w') as f:
        json.dump(dict(settings=vars(args), table=table, top1_accuracy=accuracy,
                       semantic=semantic), f, indent=1)
    print(f'wrote {args.out_dir}/quality.md and quality.json')


if __name__ == '__main__':
    main()
