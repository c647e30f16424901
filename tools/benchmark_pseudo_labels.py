#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Do models trained on refined pseudo-labels beat models trained on the
coarse ones?  The paper's claim, in miniature, on generated scenes.

Method
------
* Data (:func:`make_scene`, 3 objects of 5 shape classes each): ``--images``
  training scenes (seeds ``--seed``, ``--seed + 1``, ...) and ``--test-images``
  held-out scenes (seeds from ``--seed + 1_000_000``), ``--height`` x
  ``--width`` pixels, with their true masks as a COCO json (RLE) and as PNG
  label maps (0 = background, ``k`` = the ``k``-th shape class).
* Coarse pseudo-labels of the training scenes, one set per kind
  (:mod:`mmsamrefiner.synthetic.weak_labels`): ``box``, each mask its bounding
  box filled (box annotations); ``cam``, each mask dilated, eroded or blobby by
  ``--amount`` pixels (CAM-like); ``semantic``, label maps painted from
  CAM-like masks.  ``box`` and ``cam`` train the Mask R-CNN, ``semantic`` the
  segmenter.
* Refinement with the product's own tool, ``tools/refine.py`` (its ``run``,
  in this process), ``--refiner-config`` (default: the shipped toy SAM):
  ``--coco`` for the instance kinds, ``--label-dir`` (split-then-merge,
  background 0) for ``semantic``.  The refined instances' ``bbox`` and
  ``area`` are then recomputed from the refined masks (``tools/refine.py``
  keeps the coarse ones), so box and mask agree as in any training set.
* Label quality: mIoU of each training label set against the true training
  labels: instances, mean IoU of each mask with its true mask (same
  annotation id); label maps, class IoU over the dataset, mean over classes
  (background included).
* Models (:mod:`benchmark_pseudo_labels_configs`, random init): a Mask R-CNN
  (ResNet-18 of 16 base channels, FPN of 64 channels) and an FCN (ResNetV1c-18
  of 16 base channels, output stride 8), each trained on the coarse, the
  refined and the true labels with the same schedule (``--iters``
  iterations for the Mask R-CNN, ``--seg-iters`` for the FCN,
  batch 4, AdamW with warm-up and cosine decay) and the same seed, through
  mmengine's ``Runner`` with the config written to the training's folder, then
  tested on the held-out true labels: mask AP and AP50 (mmdet ``CocoMetric``,
  ``segm``), mIoU (mmseg ``IoUMetric``).  The true-label trainings are shared
  by the kinds of a model.

Resumable: each step (``data``, ``coarse-<kind>``, ``refined-<kind>``,
``train-<model>-<labels>``) has its own folder under ``--out-dir`` with a
``step.json`` recording its settings, the digests of what it was computed
from, its result and the digest of its output.  A re-run reuses a step whose
record matches and redoes it when anything it depends on changed.  At the end
a Markdown table is printed and written, with the numbers as JSON, to
``--out-dir`` (``results.md``, ``results.json``)::

    python tools/benchmark_pseudo_labels.py --out-dir work_dirs/benchmark_pseudo_labels
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from mmsamrefiner.evaluation.collection_metrics import evaluate_instances, evaluate_label_maps
from mmsamrefiner.mask_io.coarse_masks import decode_segmentation, read_label_map
from mmsamrefiner.mask_io.rle import encode_rle
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS, make_scene
from mmsamrefiner.synthetic.weak_labels import make_weak_masks, paint_label_map
from mmsamrefiner.utils.atomic import atomic_write_json
from mmsamrefiner.utils.digest import digest_file, digest_json

TOOLS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TOOLS)
sys.path.insert(0, TOOLS)
from benchmark_pseudo_labels_configs import fcn_config, mask_rcnn_config  # noqa: E402

#: Pseudo-label kinds: which labels they are and which model they train.
KINDS = {'box': 'mask-rcnn', 'semantic': 'fcn', 'cam': 'mask-rcnn'}
LABEL_SETS = ('coarse', 'refined', 'true')
#: The run's sizes: ``default`` (the documented run) and ``quick`` (tests).
PRESETS = dict(
    default=dict(images=300, test_images=100, height=160, width=192, iters=600, seg_iters=2000,
                 batch_size=4, log_interval=50),
    quick=dict(images=4, test_images=2, height=96, width=128, iters=2, seg_iters=2, batch_size=2,
               log_interval=1))
STEP_RECORD = 'step.json'
#: Bump when a step's code changes what it writes: every record goes stale.
STEP_VERSION = 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train Mask R-CNN and FCN on coarse, refined and true pseudo-labels of '
        'generated scenes and compare.')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_pseudo_labels')
    parser.add_argument('--kinds', nargs='+', choices=list(KINDS), default=list(KINDS))
    parser.add_argument('--images', type=int, help='training scenes (default 300)')
    parser.add_argument('--test-images', type=int, help='held-out scenes (default 100)')
    parser.add_argument('--iters', type=int,
                        help='training iterations of the Mask R-CNN (default 600)')
    parser.add_argument('--seg-iters', type=int,
                        help='training iterations of the FCN (default 2000)')
    parser.add_argument('--height', type=int, help='scene height in pixels (default 160)')
    parser.add_argument('--width', type=int, help='scene width in pixels (default 192)')
    parser.add_argument('--amount', type=int, default=5,
                        help='size in pixels of the CAM-like defects')
    parser.add_argument('--seed', type=int, default=0,
                        help='first scene seed; also the training seed')
    parser.add_argument('--device', default='cpu',
                        help="where refinement and training run ('cpu', 'cuda')")
    parser.add_argument('--threads', type=int, default=1,
                        help="torch's CPU threads (1: steady on shared cores, where torch's "
                        'thread pool can stall; more is faster on idle ones)')
    parser.add_argument('--refiner-config',
                        default=osp.join(ROOT, 'configs/samrefiner/samrefiner_sam_toy.py'))
    parser.add_argument('--quick', action='store_true',
                        help='a tiny run (4 images, 2 iterations) for tests')
    args = parser.parse_args(argv)
    for key, value in PRESETS['quick' if args.quick else 'default'].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


# ---------------------------------------------------------------------------
# steps


class Steps:
    """Runs named steps in folders under ``out_dir``, reusing finished ones.

    A step's key is the digest of its name, its settings and the output
    digests of the steps it reads (``inputs``); its record (``step.json``,
    written last and atomically) holds the key, the settings, the result and
    the digest of its output.  ``ran`` and ``reused`` list the step names of
    this run.
    """

    def __init__(self, out_dir: str, total: int):
        self.out_dir = out_dir
        self.total = total
        self.ran: List[str] = []
        self.reused: List[str] = []

    def folder(self, name: str) -> str:
        return osp.join(self.out_dir, name)

    def run(self, name: str, settings: dict, inputs: List[dict],
            compute: Callable[[str], dict]) -> dict:
        """The record of step ``name``: reused when its key matches, else
        ``compute(folder)`` (in an emptied folder) returns ``dict(result=...,
        output_digest=...)``."""
        key = digest_json([STEP_VERSION, name, settings,
                           [record['output_digest'] for record in inputs]])
        folder = self.folder(name)
        record_file = osp.join(folder, STEP_RECORD)
        number = len(self.ran) + len(self.reused) + 1
        old = None
        if osp.exists(record_file):
            with open(record_file) as f:
                old = json.load(f)
            if old.get('key') == key:
                print(f'[{number}/{self.total}] {name}: reused (finished before)', flush=True)
                self.reused.append(name)
                return old
        why = 'settings or inputs changed' if old else 'not finished before'
        print(f'[{number}/{self.total}] {name}: running ({why})', flush=True)
        if osp.exists(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        start = time.perf_counter()
        done = compute(folder)
        record = dict(name=name, key=key, settings=settings,
                      inputs=[record['name'] for record in inputs],
                      seconds=time.perf_counter() - start, **done)
        atomic_write_json(record_file, record)
        print(f'[{number}/{self.total}] {name}: done in {record["seconds"]:.1f} s', flush=True)
        self.ran.append(name)
        return record


def _digest_tree(root: str) -> str:
    """Digest of every file's relative path and content under ``root``
    (the step record itself left out)."""
    parts = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = osp.join(folder, name)
            if name == STEP_RECORD or '.records' in path.split(osp.sep) or name.endswith('.lock'):
                continue
            parts.append([osp.relpath(path, root), digest_file(path)])
    return digest_json(parts)


# ---------------------------------------------------------------------------
# data


def _coco_json(images: List[dict], masks_of: Dict[int, np.ndarray],
               labels_of: Dict[int, np.ndarray]) -> dict:
    """A COCO instance collection: RLE segmentations, ``bbox`` (xywh) and
    ``area`` from each mask; empty masks left out."""
    annotations = []
    for image in images:
        masks, labels = masks_of[image['id']], labels_of[image['id']]
        keep = masks.reshape(len(masks), -1).any(1)
        for mask, rle, label in zip(masks[keep], encode_rle(masks[keep]), labels[keep]):
            ys, xs = np.nonzero(mask)
            x1, y1 = int(xs.min()), int(ys.min())
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image['id'], category_id=int(label),
                segmentation=rle, area=float(mask.sum()),
                bbox=[x1, y1, int(xs.max()) + 1 - x1, int(ys.max()) + 1 - y1], iscrowd=0))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(SHAPE_KINDS)])


def write_split(root: str, seeds: List[int], height: int, width: int) -> None:
    """``root/images/NNNN.png`` (BGR on disk), ``root/instances.json`` (true
    masks, RLE) and ``root/label_maps/NNNN.png`` (true class maps)."""
    for sub in ('images', 'label_maps'):
        os.makedirs(osp.join(root, sub))
    images, masks_of, labels_of = [], {}, {}
    for index, seed in enumerate(seeds):
        scene = make_scene(seed=seed, height=height, width=width, num_objects=3)
        name = f'{index:04d}.png'
        cv2.imwrite(osp.join(root, 'images', name), scene.image[..., ::-1])
        cv2.imwrite(osp.join(root, 'label_maps', name), paint_label_map(scene.masks, scene.labels))
        images.append(dict(id=index + 1, file_name=name, height=height, width=width))
        masks_of[index + 1], labels_of[index + 1] = scene.masks, scene.labels
    with open(osp.join(root, 'instances.json'), 'w') as f:
        json.dump(_coco_json(images, masks_of, labels_of), f)


def read_instances(ann_file: str):
    """``(coco dict, {image id: (N, H, W) bool masks}, {image id: (N,) labels})``
    of a COCO json (annotations in file order)."""
    with open(ann_file) as f:
        coco = json.load(f)
    masks_of, labels_of = {}, {}
    for image in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
        masks_of[image['id']] = (
            np.stack([decode_segmentation(a['segmentation'], image['height'], image['width'])
                      for a in anns]) if anns
            else np.zeros((0, image['height'], image['width']), bool))
        labels_of[image['id']] = np.array([a['category_id'] for a in anns], np.int64)
    return coco, masks_of, labels_of


def label_miou(kind: str, labels_path: str, true_path: str) -> float:
    """mIoU of a training label set against the true training labels:
    instances (COCO json) by annotation id, label maps (folder) by class."""
    if KINDS[kind] == 'mask-rcnn':
        with open(labels_path) as f, open(true_path) as g:
            return evaluate_instances(json.load(f), json.load(g))['miou']
    pairs = ((read_label_map(osp.join(labels_path, name))[0],
              read_label_map(osp.join(true_path, name))[0])
             for name in sorted(os.listdir(true_path)))
    return evaluate_label_maps(pairs, ignore_index=255)['miou']


# ---------------------------------------------------------------------------
# the steps' work


def make_data(args, folder: str) -> dict:
    train_seeds = [args.seed + i for i in range(args.images)]
    test_seeds = [args.seed + 1_000_000 + i for i in range(args.test_images)]
    write_split(osp.join(folder, 'train'), train_seeds, args.height, args.width)
    write_split(osp.join(folder, 'test'), test_seeds, args.height, args.width)
    train = osp.join(folder, 'train')
    result = dict(label_miou=dict(
        instances=label_miou('box', osp.join(train, 'instances.json'),
                             osp.join(train, 'instances.json')),
        label_maps=label_miou('semantic', osp.join(train, 'label_maps'),
                              osp.join(train, 'label_maps'))))
    return dict(result=result, output_digest=_digest_tree(folder))


def make_coarse(args, kind: str, data_dir: str, folder: str) -> dict:
    """The coarse labels of ``kind`` for the training split: ``instances.json``
    or ``label_maps/``; its label mIoU against the true labels."""
    true_file = osp.join(data_dir, 'train', 'instances.json')
    coco, masks_of, labels_of = read_instances(true_file)
    weak_kind = 'cam' if kind == 'semantic' else kind
    weak_masks = {image_id: make_weak_masks(masks, weak_kind, seed=args.seed + image_id,
                                            amount=args.amount)
                  for image_id, masks in masks_of.items()}
    if KINDS[kind] == 'mask-rcnn':
        labels = osp.join(folder, 'instances.json')
        with open(labels, 'w') as f:
            json.dump(_coco_json(coco['images'], weak_masks, labels_of), f)
        true_labels = true_file
    else:
        labels = osp.join(folder, 'label_maps')
        os.makedirs(labels)
        for image in coco['images']:
            label_map = paint_label_map(weak_masks[image['id']], labels_of[image['id']])
            cv2.imwrite(osp.join(labels, image['file_name']), label_map)
        true_labels = osp.join(data_dir, 'train', 'label_maps')
    result = dict(label_miou=label_miou(kind, labels, true_labels))
    return dict(result=result, output_digest=_digest_tree(folder))


def _refine_tool():
    import refine as refine_tool  # tools/refine.py
    return refine_tool


def refiner_fingerprint(args) -> str:
    """``SAMRefiner.fingerprint()`` of ``--refiner-config`` as
    ``tools/refine.py`` builds it (settings and weight content)."""
    refine_tool = _refine_tool()
    refine_args = refine_tool.parse_args([args.refiner_config, '--img-dir', '.', '--coco', '-',
                                          '--out', '-', '--device', args.device])
    return refine_tool.build_refiner(refine_args).fingerprint()


def refine_labels(args, kind: str, data_dir: str, coarse_dir: str, folder: str) -> dict:
    """``tools/refine.py`` on the coarse labels of ``kind``; for instances the
    refined json, then ``instances.json`` with boxes and areas of the refined
    masks; for label maps ``label_maps/``."""
    refine_tool = _refine_tool()
    img_dir = osp.join(data_dir, 'train', 'images')
    common = [args.refiner_config, '--img-dir', img_dir, '--device', args.device]
    if KINDS[kind] == 'mask-rcnn':
        refined_file = osp.join(folder, 'refined.json')
        argv = common + ['--coco', osp.join(coarse_dir, 'instances.json'), '--out', refined_file]
    else:
        argv = common + ['--label-dir', osp.join(coarse_dir, 'label_maps'),
                         '--out', osp.join(folder, 'label_maps'), '--background', '0',
                         '--ignore-index', '255']
    report = refine_tool.run(refine_tool.parse_args(argv))
    failed = [r for r in report['records'] if r['status'] == 'failed']
    if failed:
        raise RuntimeError(f'tools/refine.py failed on {len(failed)} image(s) of {kind}: '
                           f'{failed[0]["reason"]}')
    if KINDS[kind] == 'mask-rcnn':
        coco, masks_of, labels_of = read_instances(refined_file)
        labels = osp.join(folder, 'instances.json')
        with open(labels, 'w') as f:
            json.dump(_coco_json(coco['images'], masks_of, labels_of), f)
        true_labels = osp.join(data_dir, 'train', 'instances.json')
    else:
        labels = osp.join(folder, 'label_maps')
        true_labels = osp.join(data_dir, 'train', 'label_maps')
    result = dict(label_miou=label_miou(kind, labels, true_labels),
                  refine_seconds=report['seconds'], images=len(report['records']))
    return dict(result=result, output_digest=_digest_tree(folder))


_RUN_COUNTER = [0]


def model_iters(args, model: str) -> int:
    """Training iterations of ``model``: ``--iters`` (Mask R-CNN) or
    ``--seg-iters`` (FCN)."""
    return args.iters if model == 'mask-rcnn' else args.seg_iters


def train_and_test(args, model: str, labels: str, data_dir: str, folder: str) -> dict:
    """Train ``model`` on ``labels`` (a COCO json or a folder of label maps of
    the training images) through mmengine's ``Runner``, test it on the held-out
    true labels; the config is written to ``folder/config.py``."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    train, test = osp.join(data_dir, 'train'), osp.join(data_dir, 'test')
    common = dict(work_dir=folder, iters=model_iters(args, model), seed=args.seed,
                  batch_size=args.batch_size, log_interval=args.log_interval)
    if model == 'mask-rcnn':
        cfg_dict = mask_rcnn_config(labels, osp.join(train, 'images'),
                                    osp.join(test, 'instances.json'), osp.join(test, 'images'),
                                    SHAPE_KINDS, (args.height, args.width), **common)
    else:
        cfg_dict = fcn_config(osp.join(train, 'images'), labels, osp.join(test, 'images'),
                              osp.join(test, 'label_maps'), ('background', ) + SHAPE_KINDS,
                              **common)
    cfg = Config(cfg_dict)
    cfg.dump(osp.join(folder, 'config.py'))
    _RUN_COUNTER[0] += 1
    cfg.experiment_name = f'{osp.basename(folder)}-{os.getpid()}-{_RUN_COUNTER[0]}'
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    metrics = runner.test()
    test_seconds = time.perf_counter() - start
    for name in os.listdir(folder):  # keep the config, the logs and the metrics only
        if name.endswith('.pth') or name == 'last_checkpoint':
            os.remove(osp.join(folder, name))
    if model == 'mask-rcnn':
        result = dict(mask_ap=float(metrics['coco/segm_mAP']),
                      mask_ap50=float(metrics['coco/segm_mAP_50']))
    else:
        result = dict(miou=float(metrics['mIoU']) / 100)
    result.update(train_seconds=train_seconds, test_seconds=test_seconds)
    atomic_write_json(osp.join(folder, 'metrics.json'), result)
    return dict(result=result, output_digest=digest_json(result))


# ---------------------------------------------------------------------------
# the table


def fmt(value: Optional[float], scale: float = 100.0, digits: int = 1) -> str:
    return '-' if value is None else f'{scale * value:.{digits}f}'


def make_rows(args, records: Dict[str, dict]) -> List[dict]:
    """One row per kind and label set; a training not finished yet gives
    None in its columns."""
    rows = []
    for kind in args.kinds:
        model = KINDS[kind]
        for label_set in LABEL_SETS:
            if label_set == 'true':
                data = records['data']['result']['label_miou']
                quality = data['instances' if model == 'mask-rcnn' else 'label_maps']
                trained = records.get(f'train-{model}-true')
            else:
                quality = records[f'{label_set}-{kind}']['result']['label_miou']
                trained = records.get(f'train-{model}-{kind}-{label_set}')
            result = trained['result'] if trained else {}
            seconds = result.get('train_seconds')
            rows.append(dict(kind=kind, labels=label_set, model=model, label_miou=quality,
                             mask_ap=result.get('mask_ap'), mask_ap50=result.get('mask_ap50'),
                             test_miou=result.get('miou'),
                             train_minutes=None if seconds is None else seconds / 60))
    return rows


def format_table(rows: List[dict]) -> str:
    lines = ['| kind | labels | label mIoU | model | mask AP | AP50 | mIoU | training (min) |',
             '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |']
    for row in rows:
        lines.append(f'| {row["kind"]} | {row["labels"]} | {fmt(row["label_miou"])} | '
                     f'{row["model"]} | {fmt(row["mask_ap"])} | {fmt(row["mask_ap50"])} | '
                     f'{fmt(row["test_miou"])} | {fmt(row["train_minutes"], 1)} |')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------


def write_results(args, records: Dict[str, dict], sizes: dict, start: float):
    """``results.md`` and ``results.json`` of what is finished; returns the
    rows and the minutes since ``start``."""
    rows = make_rows(args, records)
    minutes = (time.perf_counter() - start) / 60
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(format_table(rows) + '\n')
    atomic_write_json(osp.join(args.out_dir, 'results.json'),
                      dict(settings=dict(sizes, iters=args.iters, seg_iters=args.seg_iters,
                                         kinds=args.kinds, threads=args.threads,
                                         amount=args.amount, device=args.device,
                                         refiner_config=args.refiner_config),
                           rows=rows, minutes=minutes))
    return rows, minutes


def run(args) -> dict:
    """Every step (reusing finished ones) with torch on ``args.threads``
    threads (restored after); returns ``dict(rows, ran, reused, records)``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run_steps(args)
    finally:
        torch.set_num_threads(threads)


def _run_steps(args) -> dict:
    start = time.perf_counter()
    args.out_dir = osp.abspath(args.out_dir)
    os.makedirs(args.out_dir, exist_ok=True)
    models = sorted({KINDS[kind] for kind in args.kinds})
    total = 1 + 2 * len(args.kinds) + len(models) + 2 * len(args.kinds)
    steps = Steps(args.out_dir, total)
    records = {}
    sizes = dict(images=args.images, test_images=args.test_images, height=args.height,
                 width=args.width, seed=args.seed, objects=3)
    records['data'] = steps.run('data', sizes, [], lambda folder: make_data(args, folder))
    data_dir = steps.folder('data')
    fingerprint = refiner_fingerprint(args)
    labels_of = {}
    for kind in args.kinds:
        coarse_settings = dict(kind=kind, seed=args.seed)
        if kind != 'box':  # boxes have no size to choose
            coarse_settings['amount'] = args.amount
        coarse = steps.run(f'coarse-{kind}', coarse_settings, [records['data']],
                           lambda folder, kind=kind: make_coarse(args, kind, data_dir, folder))
        refined = steps.run(
            f'refined-{kind}', dict(kind=kind, refiner=fingerprint),
            [records['data'], coarse],
            lambda folder, kind=kind: refine_labels(args, kind, data_dir,
                                                    steps.folder(f'coarse-{kind}'), folder))
        records[f'coarse-{kind}'], records[f'refined-{kind}'] = coarse, refined
        for label_set in ('coarse', 'refined'):
            name = 'instances.json' if KINDS[kind] == 'mask-rcnn' else 'label_maps'
            labels_of[(kind, label_set)] = osp.join(steps.folder(f'{label_set}-{kind}'), name)
    schedule = dict(seed=args.seed, batch_size=args.batch_size)
    for model in models:
        true_labels = osp.join(data_dir, 'train',
                               'instances.json' if model == 'mask-rcnn' else 'label_maps')
        name = f'train-{model}-true'
        records[name] = steps.run(
            name, dict(schedule, iters=model_iters(args, model), model=model, labels='true'),
            [records['data']],
            lambda folder, model=model, labels=true_labels: train_and_test(
                args, model, labels, data_dir, folder))
    for kind in args.kinds:
        model = KINDS[kind]
        for label_set in ('coarse', 'refined'):
            name = f'train-{model}-{kind}-{label_set}'
            records[name] = steps.run(
                name, dict(schedule, iters=model_iters(args, model), model=model,
                           labels=f'{label_set}-{kind}'),
                [records['data'], records[f'{label_set}-{kind}']],
                lambda folder, model=model, labels=labels_of[(kind, label_set)]: train_and_test(
                    args, model, labels, data_dir, folder))
            write_results(args, records, sizes, start)
    rows, minutes = write_results(args, records, sizes, start)
    print(f'\n{len(steps.ran)} step(s) run, {len(steps.reused)} reused; {minutes:.1f} min\n'
          + format_table(rows), flush=True)
    return dict(rows=rows, ran=steps.ran, reused=steps.reused, records=records)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cpu':  # mmengine's Runner trains on CUDA whenever it sees a GPU
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    run(args)


if __name__ == '__main__':
    main()
