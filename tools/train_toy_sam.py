#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Train the toy SAM: a small convolutional image encoder with SAM's own
prompt encoder and mask decoder, on generated scenes.

A test and demo model, not a substitute for SAM on real photos.  It exists so
that refinement quality can be measured end to end on machines that cannot
download SAM weights: a randomly-initialised SAM cannot tell a correct pipeline
from a broken one.

Recipe (seeded; every step is a function of ``--seed``, the step number and
the weights, so a run split by ``--resume`` repeats an uninterrupted one):

* scenes from :func:`mmsamrefiner.synthetic.make_scene` (textured ellipses,
  polygons, rings, C-shapes, blobs with thin handles, clutter, occlusion) of a
  random size (long side 160-640 px, aspect from the cycle's narrowest to 1,
  portrait or landscape),
  resized to the encoder's input the way SAM is fed
  (``ResizeLongestSide``), so that the model sees objects at many scales;
* prompts sampled the SAM way, one kind per step (all objects of the batch
  go through one decoder call): a box (tight or jittered), 1-3 points
  (positives and negatives), a noisy mask (a coarse mask from
  :mod:`mmsamrefiner.synthetic.defects` as logits), or mixtures; then, half
  of the time, an iterative round whose mask input is the model's own low-res
  logits plus a corrective point in the largest error;
* SAM's losses on the decoder's low-res grid (targets area-averaged to it):
  20 x focal + dice on the best of the three candidates, MSE of the IoU head
  against the candidates' true IoUs; AdamW;
* cycles of linear warm-up + cosine decay (warm restarts, ``--cycles``), each
  with its own peak rate (``--lr``) and narrowest scene aspect
  (``--min-aspect``): a finished run grows by a cycle through ``--resume``;

Step checkpoints (weights, optimizer, schedule, step, elapsed time) go to
``--work-dir`` every ``--checkpoint-interval`` steps; ``--resume`` continues
from the newest, and ``--stop-at STEP`` ends a piece early (a long run in
pieces).  At the end it reports the mean IoU of box-prompted masks on
two held-out scene sets through :class:`mmsamrefiner.SAMRefiner` (the quality
benchmark's 288x384 scenes of 4 objects, and scenes of other sizes and aspect
ratios) and saves the state dict in SAM's key layout::

    python tools/train_toy_sam.py --out mmsamrefiner/checkpoints/toy_sam.pth

The defaults are the recipe of the shipped checkpoint.
"""
import argparse
import glob
import math
import os
import os.path as osp
import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide

from mmsamrefiner.refiner.sam import build_sam_model, resolve_sam_arch
from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.synthetic.defects import DEFECTS, make_coarse_mask

PROMPT_KINDS = ('box', 'box', 'points', 'mask', 'box+points', 'box+mask', 'all')
MAX_OBJECTS = 6  # objects per image that get prompts
MAX_POINTS = 3
#: Held-out evaluation: the quality benchmark's scenes and scenes of other shapes.
BENCHMARK_SHAPE = (288, 384)
OTHER_SHAPES = ((160, 160), (200, 560), (420, 300), (480, 640), (640, 480), (300, 700))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train the toy SAM.')
    parser.add_argument('--out', default='work_dirs/toy_sam/toy_sam.pth')
    parser.add_argument('--work-dir', default='work_dirs/toy_sam',
                        help='step checkpoints (for --resume) and the log')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the newest step checkpoint in --work-dir')
    parser.add_argument('--cycles', type=int, nargs='+', default=[9000, 8000], metavar='STEPS',
                        help='steps of each warm-up + cosine cycle (warm restarts); '
                        'the run trains their sum')
    parser.add_argument('--batch', type=int, default=4, help='images per step')
    parser.add_argument('--lr', type=float, nargs='+', default=[2e-3, 1e-3],
                        help='peak learning rate of each cycle')
    parser.add_argument('--min-aspect', type=float, nargs='+', default=[0.5, 1 / 3],
                        help="each cycle's narrowest scene (short side / long side)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--checkpoint-interval', type=int, default=250)
    parser.add_argument('--stop-at', type=int, default=None, metavar='STEP',
                        help='end this piece after STEP (step checkpoint written, no '
                        'evaluation); continue later with --resume')
    parser.add_argument('--eval-scenes', type=int, default=100,
                        help='held-out scenes per evaluation set')
    parser.add_argument('--eval-only', default=None, metavar='CHECKPOINT',
                        help='only evaluate this SAM state dict')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads; 1 leaves the other core to the scene worker')
    parser.add_argument('--workers', type=int, default=1,
                        help='scene-generating worker processes')
    args = parser.parse_args(argv)
    if len(args.lr) != len(args.cycles) or len(args.min_aspect) != len(args.cycles) \
            or min(args.cycles) < 1:
        parser.error(f'--lr and --min-aspect need one value per cycle ({len(args.cycles)} '
                     f'cycles, {len(args.lr)} learning rates, {len(args.min_aspect)} '
                     'aspects) and every cycle at least one step')
    args.steps = sum(args.cycles)
    return args


# -- data --------------------------------------------------------------------
def sample_shape(rng: np.random.Generator, min_aspect: float = 0.5):
    """(height, width): long side log-uniform in [160, 640], short side /
    long side uniform in [min_aspect, 1], portrait 30% of the time."""
    long_side = int(round(math.exp(rng.uniform(math.log(160), math.log(640)))))
    short = int(round(long_side * rng.uniform(min_aspect, 1.0)))
    return (long_side, short) if rng.random() < 0.3 else (short, long_side)


def tight_box(mask: np.ndarray) -> np.ndarray:
    """(4,) float32 xyxy box of a bool mask, inclusive (the refiner's)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def sample_box(rng, mask: np.ndarray) -> np.ndarray:
    """Tight half of the time, else jittered by 5% of the side (std)."""
    box = tight_box(mask)
    if rng.random() < 0.5:
        return box
    side = np.array([box[2] - box[0], box[3] - box[1]] * 2, np.float32) + 1
    return box + rng.normal(0, 0.05, 4).astype(np.float32) * side


def sample_points(rng, mask: np.ndarray, box: np.ndarray):
    """(MAX_POINTS, 2) xy points, (MAX_POINTS,) labels: a positive first,
    then points in the box labelled by the mask."""
    ys, xs = np.nonzero(mask)
    pick = rng.integers(len(ys))
    points, labels = [(xs[pick], ys[pick])], [1]
    x1, y1, x2, y2 = np.clip(box, 0, [mask.shape[1] - 1, mask.shape[0] - 1] * 2).astype(int)
    (x1, x2), (y1, y2) = sorted((x1, x2)), sorted((y1, y2))  # a jitter may cross sides
    for _ in range(MAX_POINTS - 1):
        x, y = int(rng.integers(x1, x2 + 1)), int(rng.integers(y1, y2 + 1))
        points.append((x, y))
        labels.append(int(mask[y, x]))
    return np.array(points, np.float32), np.array(labels, np.int64)


def to_low_res(masks: np.ndarray, input_hw, size: int, low_res: int) -> np.ndarray:
    """(N, H, W) maps of the original frame -> (N, low, low) float32 on the
    low-res grid of the padded square input: resized to the input frame
    (``input_hw``), padded to ``size`` with 0, area-averaged to ``low_res``."""
    t = torch.from_numpy(masks.astype(np.float32))[:, None]
    t = F.interpolate(t, size=input_hw, mode='bilinear', align_corners=False)
    t = F.pad(t, (0, size - input_hw[1], 0, size - input_hw[0]))
    return F.adaptive_avg_pool2d(t, low_res)[:, 0].numpy()


class SceneDataset(torch.utils.data.Dataset):
    """Training item ``index``: a scene and its prompts, from ``[seed, index]``.

    Returns a dict of numpy arrays, all prompts in the encoder's input frame
    (the scene resized so its long side is ``size``):
    ``image`` (h, w, 3) uint8 RGB, ``target`` (N, low, low) float32 true masks
    on the low-res grid, ``box`` (N, 4) xyxy, ``points`` (N, 3, 2) xy,
    ``labels`` (N, 3), ``mask_input`` (N, low, low) coarse-mask logits.
    """

    def __init__(self, seed: int, size: int, low_res: int, length: int,
                 min_aspect=((0, 0.5), )):
        self.seed, self.size, self.low_res, self.length = seed, size, low_res, length
        self.resize = ResizeLongestSide(size)
        #: (first item, narrowest aspect) pairs, ascending: one per cycle
        self.min_aspect = tuple(min_aspect)

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        aspect = [a for first, a in self.min_aspect if first <= index][-1]
        height, width = sample_shape(rng, aspect)
        scene = make_scene(seed=int(rng.integers(2**31)), height=height, width=width,
                           num_objects=int(rng.integers(2, 7)))
        masks = scene.masks[:MAX_OBJECTS]
        image = self.resize.apply_image(scene.image)
        input_hw = image.shape[:2]
        scale = np.array([input_hw[1] / width, input_hw[0] / height], np.float32)
        boxes = np.stack([sample_box(rng, m) for m in masks])
        points, labels = zip(*[sample_points(rng, m, b) for m, b in zip(masks, boxes)])
        coarse = np.stack([
            make_coarse_mask(m, str(rng.choice(DEFECTS)),
                             max(1, int(round(rng.uniform(1, 6) / scale[0]))), rng)
            for m in masks])
        mask_input = (2 * to_low_res(coarse, input_hw, self.size, self.low_res) - 1) \
            * rng.uniform(2, 20)
        return dict(
            image=image,
            target=to_low_res(masks, input_hw, self.size, self.low_res),
            box=(boxes * np.tile(scale, 2)).astype(np.float32),
            points=(np.stack(points) * scale).astype(np.float32),
            labels=np.stack(labels),
            mask_input=mask_input.astype(np.float32))


class ContinueFrom(torch.utils.data.Sampler):
    """Indices ``start, start + 1, ..., stop - 1``: the data of a resumed run
    continues where the step checkpoint left it."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


# -- losses ------------------------------------------------------------------
def focal_loss(logits, target, alpha=0.25, gamma=2.0):
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(2)


def dice_loss(logits, target):
    prob = logits.sigmoid().flatten(2)
    target = target.flatten(2)
    inter = (prob * target).sum(2)
    return 1 - (2 * inter + 1) / (prob.sum(2) + target.sum(2) + 1)


def candidate_ious(logits, target):
    pred = (logits > 0).flatten(2)
    target = target.flatten(2) > 0.5
    inter = (pred & target).sum(2).float()
    union = (pred | target).sum(2).float()
    return inter / union.clamp(min=1)


# -- training ----------------------------------------------------------------
def decode_per_prompt(decoder, embeddings, image_pe, sparse, dense):
    """Run SAM's ``MaskDecoder`` for N prompts that each bring their own image
    embedding ((N, C, h, w)), so objects of several images share one call
    (``MaskDecoder.forward`` repeats a single image's embedding instead).
    Same modules, same arithmetic; returns the multimask candidates:
    (N, 3, low, low) logits and (N, 3) predicted IoUs."""
    count = len(sparse)
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight])
    tokens = torch.cat([output_tokens[None].expand(count, -1, -1), sparse], dim=1)
    src = embeddings + dense
    n, c, h, w = src.shape
    hs, src = decoder.transformer(src, image_pe.expand(count, -1, -1, -1), tokens)
    iou_token, mask_tokens = hs[:, 0], hs[:, 1:1 + decoder.num_mask_tokens]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(n, c, h, w))
    hyper_in = torch.stack([mlp(mask_tokens[:, i])
                            for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1)
    _, c_up, h_up, w_up = upscaled.shape
    masks = (hyper_in @ upscaled.flatten(2)).view(n, -1, h_up, w_up)
    iou_pred = decoder.iou_prediction_head(iou_token)
    return masks[:, 1:], iou_pred[:, 1:]


class ToySamTrainer:
    """One training step of a SAM on a batch of :class:`SceneDataset` items."""

    def __init__(self, sam, device):
        self.sam = sam.to(device)
        self.device = device
        self.size = sam.image_encoder.img_size
        self.low_res = sam.prompt_encoder.mask_input_size[0]

    def tensor(self, batch, key):
        return torch.from_numpy(np.concatenate([item[key] for item in batch])).to(self.device)

    def prompts_for(self, kind: str, count: int, batch) -> dict:
        """Prompt tensors of one kind (``count`` points) for every object of
        the batch, concatenated over images (input frame)."""
        use = {p: p in kind or kind == 'all' for p in ('box', 'point', 'mask')}
        points = None
        if use['point']:
            points = (self.tensor(batch, 'points')[:, :count],
                      self.tensor(batch, 'labels')[:, :count])
        return dict(points=points,
                    boxes=self.tensor(batch, 'box') if use['box'] else None,
                    masks=self.tensor(batch, 'mask_input')[:, None] if use['mask'] else None)

    def decode(self, embeddings, prompts):
        """(N, 3, low, low) logits and (N, 3) IoUs of the multimask candidates."""
        sparse, dense = self.sam.prompt_encoder(**prompts)
        return decode_per_prompt(self.sam.mask_decoder, embeddings,
                                 self.sam.prompt_encoder.get_dense_pe(), sparse, dense)

    def losses(self, low_res, iou_pred, target):
        """Loss of (N, 3, low, low) logits and (N, 3) predicted IoUs against
        (N, 1, low, low) float targets, and the best candidate (lowest mask
        loss) of each prompt."""
        target = target.expand_as(low_res)
        mask_loss = 20 * focal_loss(low_res, target) + dice_loss(low_res, target)
        best = mask_loss.argmin(1)
        iou_loss = F.mse_loss(iou_pred, candidate_ious(low_res.detach(), target))
        return mask_loss.gather(1, best[:, None]).mean() + iou_loss, best

    def corrective_points(self, logits, best, target, prompts, noise):
        """Add a point at the largest error of each best candidate: the centre
        of the chosen low-res cell, in the input frame.  ``noise`` (N, low,
        low) breaks ties (drawn from the step's generator)."""
        pred = logits[torch.arange(len(best)), best] > 0
        truth = target[:, 0] > 0.5
        error = (pred != truth).float()
        inside = -F.max_pool2d(-error[:, None], 3, 1, 1)[:, 0]  # eroded: inside errors
        flat = (inside + error + 1e-3 * noise).flatten(1).argmax(1)
        grid = logits.shape[-1]
        xy = (torch.stack([flat % grid, flat // grid], 1).float() + 0.5) * (self.size / grid)
        label = truth.flatten(1).gather(1, flat[:, None]).long()
        if prompts['points'] is None:
            prompts['points'] = (xy[:, None], label)
        else:
            points, labels = prompts['points']
            prompts['points'] = (torch.cat([points, xy[:, None]], 1),
                                 torch.cat([labels, label], 1))
        return prompts

    def step(self, batch, rng: np.random.Generator):
        """The loss of a list of :class:`SceneDataset` items: one prompt kind
        for the step, one decoder call for all objects of all images."""
        images = torch.cat([
            self.sam.preprocess(torch.from_numpy(item['image']).permute(2, 0, 1)[None]
                                .float().to(self.device))
            for item in batch])
        embeddings = self.sam.image_encoder(images)
        owner = torch.cat([torch.full((len(item['box']), ), i, dtype=torch.long)
                           for i, item in enumerate(batch)]).to(self.device)
        embedding = embeddings[owner]  # (N_total, C, h, w)
        target = self.tensor(batch, 'target')[:, None]
        kind = str(rng.choice(PROMPT_KINDS))
        prompts = self.prompts_for(kind, int(rng.integers(1, MAX_POINTS + 1)), batch)
        low_res, iou_pred = self.decode(embedding, prompts)
        loss, best = self.losses(low_res, iou_pred, target)
        if rng.random() < 0.5:  # an iterative round on the model's own output
            noise = torch.from_numpy(rng.random(low_res.shape[:1] + low_res.shape[2:],
                                                dtype=np.float32)).to(self.device)
            prompts = self.corrective_points(low_res.detach(), best, target, prompts, noise)
            prompts['masks'] = low_res[torch.arange(len(best)), best][:, None].detach()
            low_res, iou_pred = self.decode(embedding, prompts)
            second, _ = self.losses(low_res, iou_pred, target)
            loss = (loss + second) / 2
        return loss


# -- evaluation --------------------------------------------------------------
@torch.no_grad()
def evaluate_box_iou(sam, num_scenes: int, shapes, seed: int) -> float:
    """Mean IoU of box-prompted masks (tight boxes of the true masks, one
    round) on held-out scenes of the given (height, width) shapes (cycled),
    through :class:`mmsamrefiner.SAMRefiner`."""
    from mmsamrefiner import SAMRefiner
    from mmsamrefiner.evaluation import mask_iou
    refiner = SAMRefiner(sam.eval(), iters=1, use_point=False, use_mask=False)
    ious = []
    for index in range(num_scenes):
        height, width = shapes[index % len(shapes)]
        scene = make_scene(seed=seed + index, height=height, width=width, num_objects=4)
        result = refiner.refine(scene.image, scene.masks)
        ious.append(mask_iou(result.masks, scene.masks))
    return float(np.concatenate(ious).mean())


def evaluate(sam, num_scenes: int) -> dict:
    """Box-prompt mIoU on the benchmark's scene shape and on other shapes
    (seeds 20,000,000 + i: neither the training stream nor the quality
    benchmark's 10,000,000 + i)."""
    return dict(benchmark=evaluate_box_iou(sam, num_scenes, [BENCHMARK_SHAPE], 20_000_000),
                other_sizes=evaluate_box_iou(sam, num_scenes, OTHER_SHAPES, 20_000_000))


# -- checkpoints -------------------------------------------------------------
def latest_step_checkpoint(work_dir: str):
    paths = glob.glob(osp.join(work_dir, 'step_*.pth'))
    return max(paths, key=lambda p: int(osp.basename(p)[5:-4])) if paths else None


def save_atomic(obj, path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def lr_factor(step: int, cycles, lrs) -> float:
    """Learning rate after ``step`` optimizer steps, relative to ``lrs[0]``:
    cosine with warm restarts, each cycle a linear warm-up over 1/30 of it to
    its peak ``lrs[i]``, then a cosine decay to 0."""
    last = len(cycles) - 1
    for i, (length, peak) in enumerate(zip(cycles, lrs)):
        if step < length or i == last:
            step = min(step, length)
            warmup = max(1, length // 30)
            return (peak / lrs[0]) * min(1.0, (step + 1) / warmup) * 0.5 * \
                (1 + math.cos(math.pi * step / length))
        step -= length


def make_schedule(optimizer, cycles, lrs):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cycles, lrs))


def same_cycles_until(made: dict, args, step: int) -> bool:
    """Whether a step checkpoint's run (its saved args) had the cycles of
    ``args`` (length, peak rate, narrowest aspect) over its first ``step``
    steps: a finished run may grow by a cycle."""
    made_cycles = list(zip(made.get('cycles', [made.get('steps')]),
                           made['lr'] if isinstance(made['lr'], list) else [made['lr']],
                           made.get('min_aspect', [0.5])))
    cycles = list(zip(args.cycles, args.lr, args.min_aspect))
    done = 0
    for i, cycle in enumerate(made_cycles):
        if done >= step:
            return True
        if i >= len(cycles) or cycles[i] != cycle:
            return False
        done += cycle[0]
    return done >= step


def train(args) -> Optional[torch.nn.Module]:
    """Train (or continue) the recipe; None when ``--stop-at`` ended the piece."""
    torch.manual_seed(args.seed)
    sam = build_sam_model('toy')
    size = resolve_sam_arch('toy')['img_size']
    trainer = ToySamTrainer(sam.train(), args.device)
    optimizer = torch.optim.AdamW(sam.parameters(), lr=args.lr[0], weight_decay=0.01)
    schedule = make_schedule(optimizer, args.cycles, args.lr)
    start_step, elapsed, running = 0, 0.0, None
    if args.resume:
        path = latest_step_checkpoint(args.work_dir)
        if path is None:
            print(f'--resume: no step checkpoint in {args.work_dir}; starting at step 0')
        else:
            state = torch.load(path, map_location=args.device, weights_only=True)
            made = state['args']
            if made['seed'] != args.seed or made['batch'] != args.batch or \
                    not same_cycles_until(made, args, state['step']):
                raise SystemExit(
                    f'{path} was made with --seed {made["seed"]} --batch {made["batch"]} '
                    f'--cycles {made.get("cycles", made.get("steps"))} --lr {made["lr"]} '
                    f'--min-aspect {made.get("min_aspect", 0.5)}; '
                    'resume with the same seed and batch and a schedule that agrees with '
                    f'it up to step {state["step"]} (later cycles may be added)')
            sam.load_state_dict(state['model'])
            optimizer.load_state_dict(state['optimizer'])
            schedule.load_state_dict(state['schedule'])
            for group, base in zip(optimizer.param_groups, schedule.base_lrs):
                # the rate of the next step under this run's cycles (a run grown
                # by a cycle continues with the new cycle's warm-up, not with 0)
                group['lr'] = base * lr_factor(schedule.last_epoch, args.cycles, args.lr)
            start_step, elapsed, running = state['step'], state['elapsed'], state['running']
            print(f'resumed from {path} (step {start_step}, {elapsed / 60:.1f} min so far)')
    loader = torch.utils.data.DataLoader(
        SceneDataset(args.seed, size, trainer.low_res, args.steps * args.batch,
                     zip(np.cumsum([0, *args.cycles[:-1]]) * args.batch, args.min_aspect)),
        batch_size=args.batch, collate_fn=list, num_workers=args.workers,
        sampler=ContinueFrom(start_step * args.batch, args.steps * args.batch),
        prefetch_factor=4 if args.workers else None)
    batches = iter(loader)
    t0 = time.perf_counter() - elapsed
    for step in range(start_step + 1, args.steps + 1):
        if args.stop_at is not None and step > args.stop_at:
            return None
        loss = trainer.step(next(batches), np.random.default_rng([args.seed, step, 1]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == args.steps:
            print(f'step {step}/{args.steps} loss {running:.4f} '
                  f'lr {schedule.get_last_lr()[0]:.2e} '
                  f'{(time.perf_counter() - t0) / 60:.1f} min', flush=True)
        if step % args.checkpoint_interval == 0 or step in (args.steps, args.stop_at):
            save_atomic(dict(model=sam.state_dict(), optimizer=optimizer.state_dict(),
                             schedule=schedule.state_dict(), step=step,
                             elapsed=time.perf_counter() - t0, running=running,
                             args=vars(args)),
                        osp.join(args.work_dir, f'step_{step}.pth'))
            for old in glob.glob(osp.join(args.work_dir, 'step_*.pth')):
                if int(osp.basename(old)[5:-4]) < step:
                    os.remove(old)
    minutes = (time.perf_counter() - t0) / 60
    print(f'trained {args.steps} steps in {minutes:.1f} min (all pieces together)')
    return sam


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.eval_only:
        sam = build_sam_model('toy')
        sam.load_state_dict(torch.load(args.eval_only, map_location='cpu', weights_only=True))
    else:
        sam = train(args)
        if sam is None:
            print(f'stopped after step {args.stop_at}; continue with --resume')
            return
    sam = sam.cpu().eval()
    scores = evaluate(sam, args.eval_scenes)
    print(f"held-out box-prompt mean IoU: {scores['benchmark']:.3f} on "
          f"{BENCHMARK_SHAPE[0]}x{BENCHMARK_SHAPE[1]} scenes, {scores['other_sizes']:.3f} on "
          f"scenes of other sizes ({args.eval_scenes} scenes each)")
    if not args.eval_only:
        save_atomic(sam.state_dict(), args.out)
        print(f'saved {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
