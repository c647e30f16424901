#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Train the toy SAM: SAM's architecture, small, on generated scenes.

A test and demo model, not a substitute for SAM on real photos.  It exists so
that refinement quality can be measured end to end on machines that cannot
download SAM weights: a randomly-initialised SAM cannot tell a correct pipeline
from a broken one.

What it does (seeded, reproducible on one device):

* scenes from :func:`mmsamrefiner.synthetic.make_scene` (textured ellipses,
  polygons, rings, C-shapes, blobs with thin handles, clutter, occlusion),
  long side = the encoder's input size, random aspect ratio;
* prompts sampled the SAM way, one kind per step (all objects of the batch
  go through one decoder call): a jittered box,
  1-3 points (positives and negatives), a noisy mask (a coarse mask from
  :mod:`mmsamrefiner.synthetic.defects` as logits), or mixtures; then an
  iterative round whose mask input is the model's own previous low-res logits
  plus a corrective point in the largest error;
* SAM's losses: 20 x focal + dice on the best of the three candidates, MSE of
  the IoU head against the candidates' true IoUs; AdamW, warm-up, cosine decay.

At the end it reports the mean IoU of box-prompted masks on held-out scenes
(another seed) through :class:`mmsamrefiner.SAMRefiner` and saves the state dict
in SAM's key layout::

    python tools/train_toy_sam.py --out mmsamrefiner/checkpoints/toy_sam.pth

The defaults are the recipe of the shipped checkpoint: 6000 steps of 4 images,
one torch thread plus one scene-generating worker, about 26 minutes on a
2-core CPU.  Losses are computed on the decoder's low-res grid (targets
area-averaged to it) and all objects of a step go through one decoder call;
both keep a step near 0.26 s on that CPU.
"""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from mmsamrefiner.refiner.sam import build_sam_model, resolve_sam_arch
from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.synthetic.defects import DEFECTS, make_coarse_mask

PROMPT_KINDS = ('box', 'points', 'mask', 'box+points', 'box+mask', 'all')
MAX_OBJECTS = 6  # objects per image that get prompts


def parse_args():
    parser = argparse.ArgumentParser(description='Train the toy SAM.')
    parser.add_argument('--out', default='work_dirs/toy_sam/toy_sam.pth')
    parser.add_argument('--steps', type=int, default=6000)
    parser.add_argument('--batch', type=int, default=4, help='images per step')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--eval-scenes', type=int, default=100)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads; 1 leaves the other core to the scene worker')
    parser.add_argument('--workers', type=int, default=1,
                        help='scene-generating worker processes')
    return parser.parse_args()


# -- data --------------------------------------------------------------------
def sample_scene(rng: np.random.Generator, size: int):
    aspect = rng.uniform(0.6, 1.0)
    short = int(round(size * aspect))
    height, width = (size, short) if rng.random() < 0.3 else (short, size)
    return make_scene(seed=int(rng.integers(2**31)), height=height, width=width,
                      num_objects=int(rng.integers(2, 6)))


def jittered_box(rng, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
    side = np.array([box[2] - box[0], box[3] - box[1]] * 2, np.float32) + 1
    return box + rng.normal(0, 0.05, 4).astype(np.float32) * side


def sample_points(rng, mask: np.ndarray, box: np.ndarray, count: int):
    """``count`` points: a positive first, then positives or negatives in the box."""
    ys, xs = np.nonzero(mask)
    pick = rng.integers(len(ys))
    points, labels = [(xs[pick], ys[pick])], [1]
    x1, y1, x2, y2 = np.clip(box, 0, [mask.shape[1] - 1, mask.shape[0] - 1] * 2).astype(int)
    for _ in range(count - 1):
        x, y = int(rng.integers(x1, x2 + 1)), int(rng.integers(y1, y2 + 1))
        points.append((x, y))
        labels.append(int(mask[y, x]))
    return np.array(points, np.float32), np.array(labels, np.int64)


def noisy_mask_logits(rng, mask: np.ndarray) -> np.ndarray:
    coarse = make_coarse_mask(mask, str(rng.choice(DEFECTS)), int(rng.integers(2, 7)), rng)
    return np.where(coarse, 1.0, -1.0).astype(np.float32) * rng.uniform(2, 20)


def to_low_res(logits: torch.Tensor, size: int, low_res: int) -> torch.Tensor:
    """(N, h, w) input-frame logits -> (N, 1, low, low): pad to the square, resize."""
    h, w = logits.shape[-2:]
    padded = F.pad(logits[:, None], (0, size - w, 0, size - h), value=-20.0)
    return F.interpolate(padded, (low_res, low_res), mode='bilinear', align_corners=False)


class SceneStream(torch.utils.data.IterableDataset):
    """An endless, seeded stream of training scenes (one rng per worker)."""

    def __init__(self, seed: int, size: int):
        self.seed, self.size = seed, size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            scene = sample_scene(rng, self.size)
            scene.masks = scene.masks[:MAX_OBJECTS]
            yield scene, np.stack([noisy_mask_logits(rng, m) for m in scene.masks])


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

    def __init__(self, sam, device, size, rng):
        self.sam = sam.to(device)
        self.device = device
        self.size = size
        self.low_res = sam.prompt_encoder.mask_input_size[0]
        self.rng = rng

    def prompts_for(self, kind, masks, noisy_masks):
        """Prompt tensors of one kind for the objects of a batch of images.

        ``masks`` is a list of (N_i, h_i, w_i) bool masks, ``noisy_masks`` the
        matching (N_i, h_i, w_i) coarse-mask logits; prompts are in each
        image's input frame (no resize: the long side is the input size) and
        concatenated over images, so one decoder call serves the batch.
        """
        rng = self.rng
        count = int(rng.integers(1, 4))
        boxes, points, labels, mask_inputs = [], [], [], []
        for image_masks, image_noisy in zip(masks, noisy_masks):
            image_boxes = np.stack([jittered_box(rng, m) for m in image_masks])
            boxes.append(image_boxes)
            pts = [sample_points(rng, m, b, count) for m, b in zip(image_masks, image_boxes)]
            points.append(np.stack([p for p, _ in pts]))
            labels.append(np.stack([l for _, l in pts]))
            if 'mask' in kind or kind == 'all':
                logits = torch.from_numpy(image_noisy).to(self.device)
                mask_inputs.append(to_low_res(logits, self.size, self.low_res))
        use_points = 'point' in kind or kind == 'all'
        use_box = 'box' in kind or kind == 'all'
        tensor = lambda arrays: torch.from_numpy(np.concatenate(arrays)).to(self.device)  # noqa
        return dict(points=(tensor(points), tensor(labels)) if use_points else None,
                    boxes=tensor(boxes) if use_box else None,
                    masks=torch.cat(mask_inputs) if mask_inputs else None)

    def decode(self, embeddings, prompts):
        """(N, 3, low, low) logits and (N, 3) IoUs of the multimask candidates."""
        sparse, dense = self.sam.prompt_encoder(**prompts)
        return decode_per_prompt(self.sam.mask_decoder, embeddings,
                                 self.sam.prompt_encoder.get_dense_pe(), sparse, dense)

    def losses(self, low_res, iou_pred, target):
        """Loss of (N, 3, low, low) logits against (N, 1, low, low) float
        targets (the true masks area-averaged to the low-res grid: 16x fewer
        pixels than at the input size, which is what makes CPU training fit)."""
        target = target.expand_as(low_res)
        mask_loss = 20 * focal_loss(low_res, target) + dice_loss(low_res, target)
        best = mask_loss.argmin(1)
        picked = mask_loss.gather(1, best[:, None]).mean()
        iou_loss = F.mse_loss(iou_pred, candidate_ious(low_res.detach(), target))
        return picked + iou_loss, low_res.detach(), best

    def corrective_points(self, logits, best, target, prompts):
        """Add a point at the largest error of each best candidate.

        ``logits`` and ``target`` are on the low-res grid; the point goes to
        the centre of the chosen cell in the input frame."""
        pred = logits[torch.arange(len(best)), best] > 0
        truth = target[:, 0] > 0.5
        error = (pred != truth).float()
        dist = F.max_pool2d(error[:, None], 3, 1, 1)[:, 0] * error  # inside errors
        flat = (dist + 1e-3 * torch.rand_like(dist)).flatten(1).argmax(1)
        grid = logits.shape[-1]
        xy = (torch.stack([flat % grid, flat // grid], 1).float() + 0.5) * (self.size / grid)
        label = truth.flatten(1).gather(1, flat[:, None]).long()
        if prompts['points'] is None:
            prompts['points'] = (xy[:, None], label)
        else:
            points, labels = prompts['points']
            prompts['points'] = (torch.cat([points, xy[:, None]], 1), torch.cat([labels, label], 1))
        return prompts

    def step(self, batch):
        """The loss of a list of ``(scene, noisy_mask_logits)``: one prompt
        kind for the step, one decoder call for all objects of all images
        (each object's decoder input is its own image's embedding)."""
        images = torch.stack([
            self.sam.preprocess(torch.from_numpy(s.image).permute(2, 0, 1).float().to(self.device))
            for s, _ in batch])
        embeddings = self.sam.image_encoder(images)
        owner = torch.cat([torch.full((len(s.masks), ), i, dtype=torch.long)
                           for i, (s, _) in enumerate(batch)]).to(self.device)
        embedding = embeddings[owner]  # (N_total, C, h, w)
        target = torch.cat([
            F.pad(torch.from_numpy(s.masks).float(),
                  (0, self.size - s.masks.shape[2], 0, self.size - s.masks.shape[1]))
            for s, _ in batch]).to(self.device)[:, None]
        target = F.adaptive_avg_pool2d(target, self.low_res)
        kind = str(self.rng.choice(PROMPT_KINDS))
        prompts = self.prompts_for(kind, [s.masks for s, _ in batch], [n for _, n in batch])
        low_res, iou_pred = self.decode(embedding, prompts)
        loss, logits, best = self.losses(low_res, iou_pred, target)
        if self.rng.random() < 0.5:  # an iterative round on the model's own output
            prompts = self.corrective_points(logits, best, target, prompts)
            prompts['masks'] = low_res[torch.arange(len(best)), best][:, None].detach()
            low_res, iou_pred = self.decode(embedding, prompts)
            second, _, _ = self.losses(low_res, iou_pred, target)
            loss = (loss + second) / 2
        return loss


@torch.no_grad()
def evaluate_box_iou(sam, num_scenes: int, seed: int) -> float:
    """Mean IoU of box-prompted masks on held-out scenes, through SAMRefiner."""
    from mmsamrefiner import SAMRefiner
    from mmsamrefiner.evaluation import mask_iou
    refiner = SAMRefiner(sam.eval(), iters=1, use_point=False, use_mask=False)
    rng = np.random.default_rng(seed)
    ious = []
    for _ in range(num_scenes):
        scene = sample_scene(rng, refiner.encoder_size)
        result = refiner.refine(scene.image, scene.masks)
        ious.append(mask_iou(result.masks, scene.masks))
    return float(np.concatenate(ious).mean())


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    sam = build_sam_model('toy')
    size = resolve_sam_arch('toy')['img_size']
    trainer = ToySamTrainer(sam.train(), args.device, size, rng)
    optimizer = torch.optim.AdamW(sam.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 30)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 *
        (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    loader = torch.utils.data.DataLoader(
        SceneStream(args.seed, size), batch_size=args.batch, collate_fn=list,
        num_workers=args.workers)
    batches = iter(loader)
    start = time.perf_counter()
    running = None
    for step in range(1, args.steps + 1):
        loss = trainer.step(next(batches))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == args.steps:
            elapsed = time.perf_counter() - start
            print(f'step {step}/{args.steps} loss {running:.4f} '
                  f'lr {schedule.get_last_lr()[0]:.2e} {elapsed / 60:.1f} min', flush=True)
    train_minutes = (time.perf_counter() - start) / 60
    sam = sam.cpu().eval()
    box_iou = evaluate_box_iou(sam, args.eval_scenes, seed=args.seed + 1_000_003)
    print(f'trained {args.steps} steps in {train_minutes:.1f} min; held-out box-prompt '
          f'mean IoU {box_iou:.3f} over {args.eval_scenes} scenes')
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp'
    torch.save(sam.state_dict(), tmp)
    os.replace(tmp, args.out)
    print(f'saved {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
