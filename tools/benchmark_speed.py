#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Where the time of a refinement goes, against a mask-by-mask baseline.

Method
------
* Input: one ``--height`` x ``--width`` image (a generated scene) and N coarse
  masks (random discs and ellipses of 10-60 px, N from ``--masks``), fixed by
  ``--seed``.
* Stages of one ``SAMRefiner.refine`` (``--iters`` rounds), timed separately
  with the refiner's own methods: ``encoder`` (resize, normalise, image
  encoder), ``mining`` (prompt mining, all rounds), ``decoder`` (prompt encoder
  + mask decoder, all rounds), ``other`` (candidate selection at low res,
  upsampling of the kept candidate, bookkeeping).  ``SAM`` = encoder +
  decoder, SAM's own forward passes; ``overhead`` = everything else
  (mining + other), also as a percentage of SAM.
* Baselines, in the same process, each run right after the measured run: the
  same algorithm with prompts mined mask by mask.  ``reference``: the
  authors' way (``mmsamrefiner.testing.naive``: per mask and round two
  whole-image distance transforms, the Gaussian on the whole image, both maps
  resized with ``F.interpolate`` through the encoder frame; all candidates
  upsampled to the image, then one chosen); tests show it gives our prompts
  and masks.  ``box-crops``: our own box-restricted ``PromptMiner`` called on
  one mask at a time.  A baseline's mining (and, for ``reference``, its
  upscaling) replaces ours; the decoder runs as ours.  The ratio of each
  baseline's overhead to ours is reported.
* ``--fixed-masks``: a trained SAM's answers stay close to the coarse masks;
  a SAM with random weights (all that this machine has for ViT-B/L/H)
  answers with blobs the size of the image, and the non-SAM stages follow
  the masks' size, not SAM's.  With this flag every round mines the coarse
  masks again, and the candidates upsampled are the masks' own mask prompts
  (low-res logits of the coarse shapes, one copy per candidate) instead of
  SAM's answers; SAM still runs in full and its time is counted as before
  (its cost does not depend on what it answers).  So the non-SAM stages are
  timed on masks of the coarse masks' size next to a real ViT's SAM time.
* Each configuration: ``--warmup`` untimed runs, then ``--runs`` timed runs;
  the median of each stage is reported.  On CUDA every stage ends with
  ``torch.cuda.synchronize()``; peak memory is ``torch.cuda.max_memory_allocated``
  on CUDA and the process's peak RSS on CPU.
* ``--encoder-dtype``: each dtype listed is measured as above by a refiner of
  that ``encoder_dtype`` (``float32``: None; ``bfloat16``, ``float16``: the
  image encoder under autocast, prompt encoder and decoder in float32), all
  sharing one SAM; one table row per dtype and N.  Agreement: for each N, one
  full ``SAMRefiner.refine`` of the image and its N coarse masks per dtype
  (SAM's own answers fed back, whatever ``--fixed-masks`` says), compared mask
  by mask with a float32 refiner's ``refine``: mean IoU (1 where both are
  empty) and the fraction of masks identical pixel for pixel.  The float32
  row compares a second float32 ``refine`` with the first (run-to-run
  repeatability).  A SAM with random weights answers with weak logits, so
  its agreement is a harsher test than a trained SAM's.
* ``--encode-batch N``: N scenes of the same size (seeds ``--seed`` ..
  ``--seed`` + N - 1), encoded by one ``SAMRefiner.encode_images`` call and by
  N ``encode_image`` calls, per dtype; ``--warmup`` untimed and ``--runs``
  timed repetitions of each, the median reported in ms per image, with the
  speed-up (N calls / one call) and the peak memory of the one-call runs.
* Split-then-merge: a 512x512 label map with ``--fragments`` fragments of one
  class (a grid of small squares), median of ``--runs`` calls.

Collection mode (``--collection N``)
------------------------------------
* Input: a generated COCO-like collection of N images of ``--height`` x
  ``--width`` (default 480x640), each with 5-20 objects of log-uniform sizes
  (``make_crowded_scene``: radii of 2-30% of the shorter side) and their
  coarse masks (one random defect each), as PNGs and a polygon json; written
  once under ``--out-dir`` and reused (``tools/make_synthetic_collection.py
  --crowded`` writes the same).
* SAM: ``--family``/``--arch``/``--checkpoint`` as above (``--arch`` may be
  a JSON dict of architecture settings, e.g. a small ViT), or with
  ``--stand-in`` a SAM that costs nothing (``mmsamrefiner.testing.StandInSAM``:
  SAM's resize and normalisation of the image, a zero embedding, the mask
  prompt's logits as its answer) with the frame sizes of that arch, read from
  the model built on the ``meta`` device (no weights): the host's ceiling.
  SAM's initialisation leaves the ViT's relative-position tables at zero;
  ``--rel-pos-std S`` fills them with normal(0, S) so that a random-weight
  SAM's attention has a position bias (for the agreement of attentions).
* Configurations: ``--setting NAME JSON``, repeated (default: one, the
  defaults); each JSON is a dict of settings of ``SAMRefiner`` or of
  ``refine_collection``, told apart by their signatures
  (``mmsamrefiner.testing.collection_speed``), e.g. ``'{"encoder_dtype":
  "bfloat16", "encoder_attention": "sdpa"}'`` or ``'{"encode_batch": 4}'``.  A
  setting neither takes in this checkout, or one the refiner refuses, skips
  that configuration with the reason; the others run.  All share one SAM
  (``--iters`` rounds).
* End to end: ``refine_collection`` over the whole collection (what
  ``tools/refine.py`` calls, under ``torch.inference_mode``, every image
  redone) and the merge of the output json, timed from the call to the
  merged file (CUDA synchronised at the end).  ``--warmup`` untimed runs,
  then ``--runs`` timed runs, the configurations interleaved run by run
  (A B C A B C ...), so drift of the machine's speed falls on all alike;
  images/s from the median run.
* Stages: after the timed runs, one pass over the images per distinct set of
  refiner settings, with the same code split into stages and timed apart (ms
  per image, mean over images; CUDA synchronised after each stage): read
  (image decode), annotations (polygons to masks), preprocess (resize to the
  encoder frame, normalise, pad), encoder, mining, decoder, upscale,
  selection (the rest of ``refine``: choosing candidates, bookkeeping), write
  (RLE and the atomic write).  Their sum is a sequential image's time.
* Agreement: every configuration's refined masks, read back from its last
  end-to-end output, against the first configuration's: mean IoU and the
  share identical pixel for pixel; and the largest difference of the first
  image's embedding, relative to the first configuration's largest value.

    python tools/benchmark_speed.py                       # toy SAM, CPU
    python tools/benchmark_speed.py --arch vit_b --masks 50 --runs 3
    python tools/benchmark_speed.py --arch vit_b --masks 50 --runs 3 --fixed-masks
    python tools/benchmark_speed.py --family hq --arch vit_tiny --masks 50 --runs 3
    python tools/benchmark_speed.py --arch vit_b --masks 10 50 --runs 3 --fixed-masks \
        --encoder-dtype float32 bfloat16 float16 --encode-batch 8
    python tools/benchmark_speed.py --collection 20 --stand-in --arch vit_h --runs 3
    python tools/benchmark_speed.py --collection 20 --arch toy --runs 3 \
        --setting default '{}' --setting batch4 '{"encode_batch": 4}'
"""
import argparse
import json
import os
import os.path as osp
import resource
import time
from functools import partial

import numpy as np
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.evaluation import mask_iou
from mmsamrefiner.refiner.bool_ops import any_along
from mmsamrefiner.refiner.prompts import Prompts
from mmsamrefiner.refiner.sam import SAM_CHECKPOINT_URLS, build_family_model, build_sam
from mmsamrefiner.refiner.stm import split_then_merge
from mmsamrefiner.synthetic import make_crowded_scene, make_scene
from mmsamrefiner.synthetic.coco_collection import write_coco_collection
from mmsamrefiner.testing import StandInSAM
from mmsamrefiner.testing import collection_speed as speed
from mmsamrefiner.testing.naive import mine_mask_by_mask, upscale_all_then_select


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--family', default='sam', choices=['sam', 'hq', 'sam2'])
    parser.add_argument('--arch', default='toy',
                        help="sam: toy, vit_b/l/h; hq: vit_b/l/h, vit_tiny; sam2: hiera_t/s/b+/l")
    parser.add_argument('--checkpoint', default=None,
                        help="default: the shipped toy SAM for 'toy', random weights otherwise")
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--masks', type=int, nargs='+', default=[1, 10, 50, 200])
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--fragments', type=int, default=200)
    parser.add_argument('--baselines', nargs='*', default=['reference', 'box-crops'],
                        choices=['reference', 'box-crops'])
    parser.add_argument('--fixed-masks', action='store_true',
                        help='every round mines the coarse masks again (see the method)')
    parser.add_argument('--encoder-dtype', nargs='+', default=['float32'],
                        choices=['float32', 'bfloat16', 'float16'],
                        help="image encoder dtype(s), each timed; masks compared with float32's")
    parser.add_argument('--encode-batch', type=int, default=0, metavar='N',
                        help='also time N images in one encode_images call vs N encode_image calls')
    parser.add_argument('--distance-bench', action='store_true',
                        help="only time the miner's distance transforms, OpenCV vs torch, "
                        'and count host syncs (see benchmark_distances)')
    parser.add_argument('--collection', type=int, default=0, metavar='N',
                        help='collection mode: N generated COCO-like images, end to end and '
                        'by stage (see the method)')
    parser.add_argument('--stand-in', action='store_true',
                        help='collection mode: a SAM that costs nothing, with the frames of '
                        '--family/--arch')
    parser.add_argument('--setting', nargs=2, action='append', metavar=('NAME', 'JSON'),
                        help='collection mode: a configuration (a JSON dict of settings of '
                        'SAMRefiner or refine_collection); repeat for several')
    parser.add_argument('--rel-pos-std', type=float, default=0.0,
                        help="collection mode: fill the ViT's relative-position tables with "
                        'normal(0, STD) (random weights leave them zero: no bias to test)')
    parser.add_argument('--threads', type=int, default=0,
                        help="torch's CPU threads (0: torch's default); on a CPU shared with "
                        'other jobs, 1 avoids threads waiting on each other')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_speed')
    parser.add_argument('--upscale-bench', action='store_true',
                        help='only time the upscale of 50 mixed-size masks, in window-size '
                        'groups and as one batch (see benchmark_upscale)')
    return parser.parse_args()


def random_masks(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """(count, H, W) bool discs and ellipses of 10-60 px radius."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    masks = np.zeros((count, height, width), bool)
    for index in range(count):
        ry, rx = rng.uniform(10, 60, 2)
        cy, cx = rng.uniform(ry, height - ry), rng.uniform(rx, width - rx)
        masks[index] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return masks


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def mine_box_crops_mask_by_mask(refiner: SAMRefiner, masks, embedding) -> Prompts:
    """The ``box-crops`` baseline: our miner, one mask at a time."""
    parts = [refiner.mine(masks[i:i + 1], embedding) for i in range(len(masks))]
    return Prompts(
        points=torch.cat([p.points for p in parts]), labels=torch.cat([p.labels for p in parts]),
        boxes=torch.cat([p.boxes for p in parts]),
        mask_inputs=torch.cat([p.mask_inputs for p in parts]),
        expanded=torch.cat([p.expanded for p in parts]))


def mine(method: str, refiner: SAMRefiner, masks, embedding) -> Prompts:
    if method == 'ours':
        return refiner.mine(masks, embedding)
    if method == 'box-crops':
        return mine_box_crops_mask_by_mask(refiner, masks, embedding)
    return mine_mask_by_mask(masks, refiner.miner, embedding.input_size, embedding.embedding,
                             refiner.backend.valid_grid(embedding.input_size))


def keep_best(method: str, refiner: SAMRefiner, logits, ious, embedding):
    """The kept candidate of each mask, (N, H, W) bool."""
    if method == 'reference':
        through = refiner.encoder_size if refiner.backend.upscale_through_encoder else None
        return upscale_all_then_select(logits, ious, through, embedding.input_size,
                                       embedding.original_size, refiner.backend.mask_threshold)
    best = ious.argmax(1)
    return refiner.upscale(logits[torch.arange(len(best), device=logits.device), best], embedding)


@torch.inference_mode()
def timed_refine(refiner: SAMRefiner, image: np.ndarray, masks: torch.Tensor,
                 method: str = 'ours', fixed_masks: bool = False) -> dict:
    """One refinement, stage by stage (seconds); the same steps as ``refine``,
    with ``method``'s mining and upscaling ('ours', 'reference', 'box-crops').
    ``fixed_masks``: every round mines ``masks`` again, and the candidates
    upsampled are the masks' own mask prompts (low-res logits of the coarse
    shapes, one copy per candidate) instead of SAM's answers."""
    device = refiner.device
    times = dict(encoder=0.0, mining=0.0, decoder=0.0, other=0.0)
    sync(device)
    start = time.perf_counter()
    embedding = refiner.encode_image(image)
    sync(device)
    times['encoder'] = time.perf_counter() - start
    current = masks
    for _ in range(refiner.iters):
        tick = time.perf_counter()
        prompts = mine(method, refiner, current, embedding)
        sync(device)
        tock = time.perf_counter()
        times['mining'] += tock - tick
        logits, ious = refiner.decode(prompts, embedding)
        sync(device)
        tick = time.perf_counter()
        times['decoder'] += tick - tock
        if fixed_masks and prompts.mask_inputs is not None:
            logits = prompts.mask_inputs.expand_as(logits)
        new = keep_best(method, refiner, logits, ious, embedding)
        lost = ~any_along(new.flatten(1), 1)
        if not fixed_masks:
            new[lost] = current[lost]
            current = new
        sync(device)
        times['other'] += time.perf_counter() - tick
    times['total'] = time.perf_counter() - start
    return times


def peak_memory_mb(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_memory(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def build_refiners(args) -> dict:
    """One refiner per ``--encoder-dtype`` (plus float32 for the agreement),
    all sharing one SAM."""
    checkpoint = args.checkpoint
    if checkpoint is None and args.arch == 'toy':
        checkpoint = SAM_CHECKPOINT_URLS['toy']
    if checkpoint == 'none':
        checkpoint = None
    sam = build_sam(args.arch, checkpoint, family=args.family)
    return {dtype: SAMRefiner(sam, iters=args.iters, device=args.device,
                              encoder_dtype=None if dtype == 'float32' else dtype).eval()
            for dtype in dict.fromkeys(list(args.encoder_dtype) + ['float32'])}


def agreement(refiner: SAMRefiner, image: np.ndarray, masks: torch.Tensor,
              reference: np.ndarray) -> tuple:
    """(mean IoU, fraction identical) of ``refiner.refine``'s masks against
    ``reference``, (N, H, W) bool."""
    refined = refiner.refine(image, masks).masks.cpu().numpy()
    identical = (refined == reference).reshape(len(refined), -1).all(1)
    return float(mask_iou(refined, reference).mean()), float(identical.mean())


def benchmark_refiner(args, refiners: dict) -> list:
    """One row per dtype and mask count; agreement with float32 where
    another dtype is listed."""
    device = refiners['float32'].device
    image = make_scene(seed=args.seed, height=args.height, width=args.width).image
    compare = args.encoder_dtype != ['float32']
    references = {}  # mask count -> float32 refine's masks, (N, H, W) bool
    rows = []
    for dtype in args.encoder_dtype:
        for count in args.masks:
            masks = random_masks(count, args.height, args.width, args.seed)
            masks = torch.from_numpy(masks).to(device)
            row = dict(dtype=dtype, **benchmark_masks(args, refiners[dtype], image, masks))
            ratios = ', '.join(
                f"{m} baseline's overhead {row[m.replace('-', '_') + '_ratio']:.1f}x ours"
                for m in args.baselines)
            print(f"{dtype} N={count}: total {row['total_ms']:.0f} ms (encoder "
                  f"{row['encoder_ms']:.1f}), overhead {row['overhead_pct']:.1f}% of SAM; {ratios}",
                  flush=True)
            if compare:
                if count not in references:
                    references[count] = refiners['float32'].refine(image, masks).masks.cpu().numpy()
                miou, identical = agreement(refiners[dtype], image, masks, references[count])
                row.update(iou_vs_float32=miou, identical_vs_float32=identical)
                print(f'  masks vs float32: mean IoU {miou:.4f}, {100 * identical:.1f}% identical',
                      flush=True)
            rows.append(row)
    return rows


def benchmark_masks(args, refiner: SAMRefiner, image: np.ndarray, masks: torch.Tensor) -> dict:
    """The stages of ours and of the baselines for one set of coarse masks (ms)."""
    device = refiner.device
    reset_peak_memory(device)
    methods = ['ours'] + list(args.baselines)
    runs = {method: [] for method in methods}
    for run in range(args.warmup + args.runs):
        for method in methods:
            times = timed_refine(refiner, image, masks, method, args.fixed_masks)
            if run >= args.warmup:
                runs[method].append(times)
    med = {method: {k: float(np.median([t[k] for t in runs[method]])) for k in runs[method][0]}
           for method in methods}
    ours = med['ours']
    sam = ours['encoder'] + ours['decoder']
    overhead = ours['mining'] + ours['other']
    row = dict(masks=len(masks), **{f'{k}_ms': 1000 * v for k, v in ours.items()},
               sam_ms=1000 * sam, overhead_ms=1000 * overhead,
               overhead_pct=100 * overhead / sam, peak_memory_mb=peak_memory_mb(device))
    for method in args.baselines:
        base = med[method]
        key = method.replace('-', '_')
        row[f'{key}_mining_ms'] = 1000 * base['mining']
        row[f'{key}_overhead_ms'] = 1000 * (base['mining'] + base['other'])
        row[f'{key}_total_ms'] = 1000 * base['total']
        row[f'{key}_ratio'] = (base['mining'] + base['other']) / overhead
    return row


@torch.inference_mode()
def time_encoding(refiner: SAMRefiner, images: list, batched: bool) -> float:
    """Seconds to encode ``images``: one ``encode_images`` call or one
    ``encode_image`` call each."""
    device = refiner.device
    sync(device)
    start = time.perf_counter()
    if batched:
        refiner.encode_images(images)
    else:
        for image in images:
            refiner.encode_image(image)
    sync(device)
    return time.perf_counter() - start


def benchmark_encode_batch(args, refiners: dict) -> list:
    """Per dtype: ms per image of N images in one call and in N calls."""
    count = args.encode_batch
    images = [make_scene(seed=args.seed + i, height=args.height, width=args.width).image
              for i in range(count)]
    rows = []
    for dtype in args.encoder_dtype:
        refiner = refiners[dtype]
        device = refiner.device
        reset_peak_memory(device)
        batched = [time_encoding(refiner, images, True) for _ in range(args.warmup + args.runs)]
        peak = peak_memory_mb(device)
        single = [time_encoding(refiner, images, False) for _ in range(args.warmup + args.runs)]
        batched_ms = 1000 * float(np.median(batched[args.warmup:])) / count
        single_ms = 1000 * float(np.median(single[args.warmup:])) / count
        rows.append(dict(dtype=dtype, images=count, batched_ms_per_image=batched_ms,
                         single_ms_per_image=single_ms, speedup=single_ms / batched_ms,
                         peak_memory_mb=peak))
        print(f'{dtype} encode {count} images: one call {batched_ms:.1f} ms/image, '
              f'{count} calls {single_ms:.1f} ms/image ({single_ms / batched_ms:.2f}x)', flush=True)
    return rows


def benchmark_stm(fragments: int, runs: int) -> float:
    """Median seconds of split-then-merge on a 512x512 map with ``fragments`` squares."""
    label_map = np.zeros((512, 512), np.int64)
    side = int(np.ceil(np.sqrt(fragments)))
    step = 512 // side
    placed = 0
    for gy in range(side):
        for gx in range(side):
            if placed < fragments:
                y0, x0 = gy * step, gx * step
                label_map[y0 + 2:y0 + step - 2, x0 + 2:x0 + step - 2] = 1
                placed += 1
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        split_then_merge(label_map, [1])
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def benchmark_upscale(args) -> str:
    """Upscale in window-size groups against one batch padded to the largest
    window (``--upscale-bench``).

    Synthetic low-res logits in the frames of SAM ViT-B/L/H (encoder square
    1024, logits 256x256; no SAM is built) for a ``--height`` x ``--width``
    image: 45 small discs/ellipses (10-40 px radius in the image) and 5 large
    ones (120-220 px), SAM-like logits (2 per low-res cell from the edge,
    clamped to +-20, Gaussian noise of 0.3), fixed by ``--seed``.  Each mode
    upscales all 50 at once with ``upscale_to_masks`` (as
    ``SAMRefiner.upscale`` does with ``max_batch`` >= 50); ``--warmup``
    untimed calls, then max(``--runs``, 7) timed calls each, the two modes
    alternating; medians in ms.  The masks are checked equal.
    """
    from mmsamrefiner.refiner.resize import resized_shape
    from mmsamrefiner.refiner.upscale import upscale_bands, upscale_to_masks
    encoder_size, low_res = 1024, 256  # SAM ViT-B/L/H
    device = torch.device(args.device)
    height, width = args.height, args.width
    input_size = resized_shape(height, width, encoder_size)
    cell = low_res / encoder_size * input_size[0] / height  # low-res cells per image pixel
    rng = np.random.default_rng(args.seed)
    yy, xx = np.mgrid[:low_res, :low_res]
    logits = []
    for radius in np.concatenate([rng.uniform(10, 40, 45), rng.uniform(120, 220, 5)]):
        ry, rx = radius * cell * rng.uniform(0.7, 1.3, 2)
        cy = rng.uniform(0, input_size[0] * low_res / encoder_size)
        cx = rng.uniform(0, input_size[1] * low_res / encoder_size)
        edge = 1 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        logits.append(np.clip(2 * min(ry, rx) * edge, -20, 20) + rng.normal(0, 0.3, edge.shape))
    logits = torch.from_numpy(np.stack(logits)).float().to(device)
    rows, cols = upscale_bands((low_res, low_res), encoder_size, input_size, (height, width),
                               device)
    times = {True: [], False: []}
    masks = {}
    for run in range(args.warmup + max(args.runs, 7)):
        for group_windows in (True, False):
            sync(device)
            start = time.perf_counter()
            masks[group_windows] = upscale_to_masks(logits, rows, cols,
                                                    group_windows=group_windows)
            sync(device)
            if run >= args.warmup:
                times[group_windows].append(1000 * (time.perf_counter() - start))
    if not torch.equal(masks[True], masks[False]):
        raise AssertionError('grouped and one-batch upscaling gave different masks')
    grouped, one_batch = (float(np.median(times[g])) for g in (True, False))
    area = masks[True].flatten(1).float().mean(1).cpu().numpy()
    return '\n'.join([
        f'upscale of 50 masks (45 small, 5 large: {100 * area[:45].mean():.2f}% and '
        f'{100 * area[45:].mean():.1f}% of the image on average), {height}x{width} image, '
        f'logits {low_res}x{low_res}, encoder {encoder_size}, {args.device}, '
        f'{torch.get_num_threads()} threads; median of {len(times[True])} runs (ms):', '',
        '| one batch | window-size groups | speed-up |', '| ---: | ---: | ---: |',
        f'| {one_batch:.1f} | {grouped:.1f} | {one_batch / grouped:.1f}x |'])

def benchmark_distances(args) -> str:
    """``--distance-bench``: the prompt miner's exact distance transforms with
    OpenCV (on a host copy of the masks) and in torch (on ``--device``), and
    the host syncs of one refined image with each.

    Method: on the ``--height`` x ``--width`` scene, for each count in
    ``--masks`` that many coarse masks (:func:`random_masks`: crops of
    20-120 px), and 4 image-sized ellipses (half axes 30-50% of the image's
    sides).  One timed call = what the miner
    does per round: the positive-point transforms of every size group
    (``box_crops``) and the negative points (``farthest_background``), with
    the miner's own size groups (computed once, untimed); median of
    ``--runs`` calls after ``--warmup``; the results of the two are compared
    bit for bit.  Host syncs: one ``SAMRefiner.refine`` (``--iters`` rounds)
    of the scene and the most coarse masks, per backend, counted by
    :func:`mmsamrefiner.testing.syncs.count_host_syncs` (calls that copy
    between host and device on a GPU), all of it and the miner's part.
    """
    from collections import Counter

    from mmsamrefiner.refiner.prompts import (
        OpenCVDistances,
        TorchDistances,
        masks_to_boxes,
        size_groups_and_crops,
    )
    from mmsamrefiner.testing.syncs import count_host_syncs
    device = torch.device(args.device)
    height, width = args.height, args.width
    scene = make_scene(seed=args.seed, height=height, width=width).image
    rng = np.random.default_rng(args.seed)
    yy, xx = np.mgrid[:height, :width]
    sets = [(f'{count} coarse', random_masks(count, height, width, args.seed))
            for count in args.masks]
    large = []
    for _ in range(4):
        ry, rx = rng.uniform(0.3, 0.5) * height, rng.uniform(0.3, 0.5) * width
        cy, cx = rng.uniform(ry, height - ry), rng.uniform(rx, width - rx)
        large.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
    sets.append(('4 image-sized', np.stack(large)))

    def one_round(backend, masks, tight, groups):
        distances = backend(masks, tight)
        results = [distances.box_crops(*group) for group in groups]
        results.append(distances.farthest_background(groups))
        sync(device)
        return results

    lines = [f'Distance transforms of one mining round, {height}x{width}, {device}, median of '
             f'{args.runs} after {args.warmup} warm-up (ms):', '',
             '| masks | crop sides (px) | size groups | OpenCV | torch | torch / OpenCV '
             '| identical |',
             '| --- | --- | ---: | ---: | ---: | ---: | --- |']
    for name, masks in sets:
        masks = torch.from_numpy(masks).to(device)
        tight = masks_to_boxes(masks)
        groups = size_groups_and_crops(tight)
        sides = (tight[:, 2:] - tight[:, :2] + 1).cpu()
        times, outputs = {}, {}
        for label, backend in (('opencv', OpenCVDistances), ('torch', TorchDistances)):
            runs = []
            for _ in range(args.warmup + args.runs):
                start = time.perf_counter()
                outputs[label] = one_round(backend, masks, tight, groups)
                runs.append(time.perf_counter() - start)
            times[label] = 1000 * float(np.median(runs[args.warmup:]))
        identical = all(torch.equal(a, b) for x, y in zip(outputs['opencv'], outputs['torch'])
                        for a, b in zip(x, y))
        lines.append(f"| {name} | {int(sides.min())}-{int(sides.max())} | {len(groups)} | "
                     f"{times['opencv']:.2f} | {times['torch']:.2f} | "
                     f"{times['torch'] / times['opencv']:.1f}x | {'yes' if identical else 'NO'} |")
        print(lines[-1], flush=True)

    refiner = build_refiners(args)['float32']
    name, masks = max(sets[:-1], key=lambda item: len(item[1]))  # the most coarse masks
    masks = torch.from_numpy(masks).to(device)
    miner = refiner.miner
    lines += ['', f'Host syncs of one `SAMRefiner.refine` ({args.arch}, {name} masks, '
              f'{refiner.iters} rounds; `mmsamrefiner.testing.syncs`):', '',
              '| distance backend | whole refine | mining | mining, by call |',
              '| --- | ---: | ---: | --- |']
    for backend in ('opencv', 'torch'):
        miner.distance_backend = backend
        mining = Counter()

        def counted_miner(*inputs, **options):
            with count_host_syncs() as counts:
                prompts = miner(*inputs, **options)
            mining.update(counts)
            return prompts

        refiner.miner = counted_miner
        try:
            with count_host_syncs() as total:
                refiner.refine(scene, masks)
        finally:
            refiner.miner = miner
            miner.distance_backend = 'auto'
        calls = ', '.join(f'{name} {count}' for name, count in sorted(mining.items()))
        lines.append(f'| {backend} | {sum(total.values())} | {sum(mining.values())} | {calls} |')
        print(lines[-1], flush=True)
    return '\n'.join(lines)


def markdown(args, rows, stm_seconds, encode_rows) -> str:
    fixed = ', coarse masks re-mined every round (`--fixed-masks`)' if args.fixed_masks else ''
    lines = [f'{args.family} `{args.arch}`, {args.height}x{args.width} image, {args.iters} '
             f'rounds{fixed}, device `{args.device}`; median of {args.runs} runs after '
             f'{args.warmup} warm-up (ms)', '']
    compare = args.encoder_dtype != ['float32']
    head = (['encoder dtype'] if compare else []) + [
        'masks', 'encoder', 'mining', 'decoder', 'other', 'total', 'overhead / SAM']
    for method in args.baselines:
        head += [f'{method} overhead', f'{method} / ours']
    if compare:
        head += ['IoU vs float32', 'identical']
    lines += ['| ' + ' | '.join(head + ['peak MB']) + ' |',
              '|' + ' --- |' * compare + ' ---: |' * (len(head) + 1 - compare)]
    for r in rows:
        cells = ([r['dtype']] if compare else []) + [f"{r['masks']}"] + [
            f"{r[k + '_ms']:.1f}" for k in ('encoder', 'mining', 'decoder', 'other', 'total')]
        cells.append(f"{r['overhead_pct']:.1f}%")
        for method in args.baselines:
            key = method.replace('-', '_')
            cells += [f"{r[key + '_overhead_ms']:.1f}", f"{r[key + '_ratio']:.1f}x"]
        if compare:
            cells += [f"{r['iou_vs_float32']:.4f}", f"{100 * r['identical_vs_float32']:.1f}%"]
        lines.append('| ' + ' | '.join(cells + [f"{r['peak_memory_mb']:.0f}"]) + ' |')
    if compare:
        lines += ['', 'IoU vs float32, identical: the masks of one full `refine` against a float32 '
                  "refiner's (mean IoU over masks; masks equal pixel for pixel); for float32, "
                  'a second float32 `refine` against the first.']
    if encode_rows:
        count = args.encode_batch
        lines += ['', f'{count} images of {args.height}x{args.width} encoded by one '
                  f'`encode_images` call vs {count} `encode_image` calls; ms per image, '
                  f'median of {args.runs} runs after {args.warmup} warm-up', '',
                  f'| encoder dtype | one call | {count} calls | speed-up | peak MB (one call) |',
                  '| --- | ---: | ---: | ---: | ---: |']
        for r in encode_rows:
            lines.append(f"| {r['dtype']} | {r['batched_ms_per_image']:.1f} | "
                         f"{r['single_ms_per_image']:.1f} | {r['speedup']:.2f}x | "
                         f"{r['peak_memory_mb']:.0f} |")
    lines += ['', f'split-then-merge, 512x512, {args.fragments} fragments: '
              f'{1000 * stm_seconds:.0f} ms (median of {args.runs})']
    return '\n'.join(lines)


def collection_sam(args) -> torch.nn.Module:
    """The collection mode's SAM: built as ``--family``/``--arch``/
    ``--checkpoint`` say (an ``--arch`` that starts with ``{`` is a JSON dict
    of architecture settings), or a stand-in with its frames
    (``--stand-in``)."""
    arch = json.loads(args.arch) if args.arch.startswith('{') else args.arch
    if args.stand_in:
        with torch.device('meta'):  # the frames only: no weights allocated
            model = build_family_model(args.family, arch)
        return StandInSAM.like(model)
    checkpoint = args.checkpoint
    if checkpoint is None and arch == 'toy':
        checkpoint = SAM_CHECKPOINT_URLS['toy']
    sam = build_sam(arch, None if checkpoint == 'none' else checkpoint, family=args.family)
    if args.rel_pos_std:
        generator = torch.Generator().manual_seed(args.seed)
        with torch.no_grad():
            for name, parameter in sam.named_parameters():
                if 'rel_pos' in name:
                    parameter.copy_(args.rel_pos_std * torch.randn(parameter.shape,
                                                                   generator=generator))
    return sam


def collection_files(args) -> tuple:
    """(json, image folder) of the generated collection, written once."""
    root = osp.join(args.out_dir, f'collection_{args.collection}_{args.height}x{args.width}_'
                    f'seed{args.seed}')
    ann_file = osp.join(root, 'instances.json')
    if not osp.exists(ann_file):
        make = partial(make_crowded_scene, height=args.height, width=args.width)
        write_coco_collection(root, args.collection, coarse=True, seed=args.seed, make=make)
    return ann_file, osp.join(root, 'images')


def benchmark_collection(args) -> None:
    """The collection mode (see the method): end to end per configuration,
    interleaved; stages; agreement with the first configuration."""
    configs = [speed.split_settings(name, json.loads(text))
               for name, text in (args.setting or [('default', '{}')])]
    sam = collection_sam(args)
    ann_file, img_dir = collection_files(args)
    runnable, refiners, outputs = [], {}, {}
    for config in configs:
        if not config.skipped:
            refiners[config.name] = speed.build_refiner(sam, config, args.device,
                                                        dict(iters=args.iters))
        if config.skipped:
            print(f'skipping {config.name}: {config.skipped}', flush=True)
            continue
        runnable.append(config)
        out_file = osp.join(args.out_dir, 'collection_out', config.name, 'refined.json')
        outputs[config.name] = speed.open_output(ann_file, img_dir, out_file)
    if not runnable:
        raise SystemExit('no configuration can run here')
    count = len(outputs[runnable[0].name].items())
    seconds = {config.name: [] for config in runnable}
    for run in range(args.warmup + args.runs):
        for config in runnable:
            took, summary = speed.time_collection(refiners[config.name], outputs[config.name],
                                                  config.collection)
            if summary['failed']:
                print(f"  {config.name}: failed images {summary['failed'][:3]}", flush=True)
            if run >= args.warmup:
                seconds[config.name].append(took)
            print(f"{'warm-up' if run < args.warmup else 'run'} {run}: {config.name} "
                  f'{count / took:.2f} images/s', flush=True)
    stages, embeddings, measured = {}, {}, {}  # measured: refiner's settings -> (stages, names)
    for config in runnable:
        key = json.dumps([config.refiner, config.attributes], sort_keys=True)
        if key not in measured:
            scratch = speed.open_output(ann_file, img_dir, osp.join(
                args.out_dir, 'collection_stages', config.name, 'refined.json'))
            measured[key] = (speed.stage_times(refiners[config.name], scratch), [])
        measured[key][1].append(config.name)
        stages[config.name], embeddings[config.name] = measured[key][0]
    stage_rows = {', '.join(names): times for (times, _), names in measured.values()}
    first = runnable[0].name
    scale = float(embeddings[first].abs().max()) or 1.0
    rows = []
    for config in runnable:
        median = float(np.median(seconds[config.name]))
        miou, identical = speed.mask_agreement(outputs[config.name], outputs[first])
        rows.append(dict(name=config.name, settings=config.settings, seconds=seconds[config.name],
                         images_per_s=count / median, ms_per_image=1000 * median / count,
                         iou_vs_first=miou, identical_vs_first=identical,
                         embedding_diff_vs_first=float(
                             (embeddings[config.name] - embeddings[first]).abs().max()) / scale,
                         stages_ms=stages[config.name]))
    report = collection_markdown(args, ann_file, count, rows, stage_rows)
    print(report)
    os.makedirs(args.out_dir, exist_ok=True)
    arch = 'custom' if args.arch.startswith('{') else args.arch
    name = ('collection_' + ('stand-in_' if args.stand_in else '') +
            f'{args.family}_{arch}_{args.device}')
    with open(osp.join(args.out_dir, name + '.md'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(args.out_dir, name + '.json'), 'w') as f:
        json.dump(dict(settings=vars(args), images=count, rows=rows), f, indent=1)
    print(f'wrote {args.out_dir}/{name}.md')


def collection_markdown(args, ann_file: str, count: int, rows: list, stage_rows: dict) -> str:
    """The collection mode's tables; ``stage_rows``: ms per stage of each
    distinct set of refiner settings, by the names of its configurations."""
    with open(ann_file) as f:
        masks = len(json.load(f)['annotations'])
    sam = (f'a stand-in SAM at the frames of {args.family} `{args.arch}`' if args.stand_in
           else f'{args.family} `{args.arch}`')
    first = rows[0]
    lines = [f'{count} images of {args.height}x{args.width}, {masks} coarse masks '
             f'({masks / count:.1f} an image), {sam}, {args.iters} rounds, device '
             f'`{args.device}`; end to end: median of {args.runs} runs after {args.warmup} '
             'warm-up, configurations interleaved', '',
             '| configuration | settings | images/s | ms/image | vs first | masks vs first: '
             'mean IoU | identical | embedding diff |',
             '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in rows:
        lines.append(f"| {r['name']} | `{json.dumps(r['settings'])}` | {r['images_per_s']:.2f} | "
                     f"{r['ms_per_image']:.0f} | "
                     f"{r['images_per_s'] / first['images_per_s']:.2f}x | "
                     f"{r['iou_vs_first']:.4f} | {100 * r['identical_vs_first']:.1f}% | "
                     f"{r['embedding_diff_vs_first']:.1e} |")
    lines += ['', 'ms per image by stage (one sequential pass per set of refiner settings, mean '
              'over images):', '']
    lines += speed.stage_table(list(stage_rows), stage_rows)
    return '\n'.join(lines)


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.collection:
        return benchmark_collection(args)
    if args.upscale_bench:
        print(benchmark_upscale(args))
        return
    if args.distance_bench:
        print(benchmark_distances(args))
        return
    refiners = build_refiners(args)
    rows = benchmark_refiner(args, refiners)
    encode_rows = benchmark_encode_batch(args, refiners) if args.encode_batch > 0 else []
    stm_seconds = benchmark_stm(args.fragments, args.runs)
    report = markdown(args, rows, stm_seconds, encode_rows)
    print(report)
    os.makedirs(args.out_dir, exist_ok=True)
    name = f'speed_{args.family}_{args.arch}_{args.device}' + ('_fixed' if args.fixed_masks else '')
    with open(osp.join(args.out_dir, name + '.md'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(args.out_dir, name + '.json'), 'w') as f:
        json.dump(dict(settings=vars(args), rows=rows, encode_batch=encode_rows,
                       stm_seconds=stm_seconds), f, indent=1)
    print(f'wrote {args.out_dir}/{name}.md')


if __name__ == '__main__':
    main()
