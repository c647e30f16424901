#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refine coarse masks of one image and save a picture of before and after.

With no arguments it runs on an embedded default: a generated scene whose
coarse masks are spoiled copies of the true ones, refined by a small SAM with
*random weights* (no download).  Such a SAM runs the whole pipeline but its
masks mean nothing; pass a real checkpoint for real refinement::

    python tools/demo.py                                   # embedded default
    python tools/demo.py --image img.jpg --masks m1.png m2.png \\
        --arch vit_h --checkpoint sam_vit_h_4b8939.pth     # your data
"""
import argparse
import os
import os.path as osp
import time

import cv2
import numpy as np
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.evaluation import mask_iou
from mmsamrefiner.refiner.inputs import load_rgb_image, to_bool_masks
from mmsamrefiner.synthetic import make_coarse_masks, make_scene
from mmsamrefiner.visualization import draw_masks, side_by_side

#: A small SAM-architecture model for the embedded default (random weights).
DEMO_SAM_ARCH = dict(
    embed_dim=64, depth=4, num_heads=4, global_attn_indexes=(1, 3),
    img_size=256, prompt_embed_dim=64, window_size=8, decoder_mlp_dim=256,
    decoder_num_heads=4, iou_head_hidden_dim=64, mask_in_chans=8)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--image', help='image path (default: a generated scene)')
    parser.add_argument('--masks', nargs='+', default=[],
                        help='binary mask PNGs (0/255 or 0/1), one per object')
    parser.add_argument('--arch', default=None,
                        help="SAM arch: vit_b, vit_l or vit_h (default: a small "
                        'random demo SAM)')
    parser.add_argument('--checkpoint', help='SAM checkpoint path or URL')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--margin', type=float, default=0.0,
                        help='elastic-box threshold (0: off)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0, help='seed of the generated scene')
    parser.add_argument('--out-dir', default='outputs/demo')
    return parser.parse_args()


def load_inputs(args):
    """(RGB image, coarse masks, true masks or None) from files or a generated scene."""
    if args.image is None:
        scene = make_scene(seed=args.seed, num_objects=4)
        return scene.image, make_coarse_masks(scene.masks, seed=args.seed), scene.masks
    if not args.masks:
        raise SystemExit('--image needs --masks')
    image = load_rgb_image(args.image)
    masks = []
    for path in args.masks:
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise SystemExit(f'cannot read mask {path!r}')
        masks.append(mask)
    return image, to_bool_masks(np.stack(masks)).numpy(), None


def main():
    args = parse_args()
    image, coarse, truth = load_inputs(args)
    if args.checkpoint is None:
        torch.manual_seed(args.seed)
        arch = args.arch or DEMO_SAM_ARCH
        sam_cfg = dict(type='SAM', arch=arch)
        what = 'a small SAM' if args.arch is None else f'SAM {args.arch}'
        print(f'NOTE: no checkpoint given, so this demo uses {what} with RANDOM '
              'weights.\n      It runs the whole SAMRefiner pipeline, but its '
              'refined masks are meaningless.\n      For real refinement pass '
              '--arch vit_h --checkpoint sam_vit_h_4b8939.pth.')
    else:
        sam_cfg = dict(type='SAM', arch=args.arch or 'vit_h', checkpoint=args.checkpoint)
    refiner = SAMRefiner(sam_cfg, iters=args.iters, margin=args.margin,
                         device=args.device)
    print(f'refiner: {refiner!r}')
    print(f'image {image.shape[1]}x{image.shape[0]}, {len(coarse)} coarse masks, '
          f'device {args.device}')

    start = time.perf_counter()
    embedding = refiner.encode_image(image)
    encoded = time.perf_counter()
    result = refiner.refine(image, coarse, image_embedding=embedding)
    done = time.perf_counter()
    print(f'image encoder {1e3 * (encoded - start):.0f} ms, {args.iters} refinement '
          f'rounds {1e3 * (done - encoded):.0f} ms')

    header = f"{'mask':>4} {'coarse px':>9} {'refined px':>10} {'SAM IoU':>7}"
    if truth is not None:
        header += f" {'IoU coarse':>10} {'IoU refined':>11}"
        iou_coarse, iou_refined = mask_iou(coarse, truth), mask_iou(result.masks, truth)
    print(header)
    for i in range(len(coarse)):
        row = (f'{i:>4} {coarse[i].sum():>9} {result.masks[i].sum():>10} '
               f'{result.scores[i]:>7.3f}')
        if truth is not None:
            row += f' {iou_coarse[i]:>10.3f} {iou_refined[i]:>11.3f}'
        print(row)
    if truth is not None:
        print(f'mean IoU against the true masks: coarse {iou_coarse.mean():.3f}, '
              f'refined {iou_refined.mean():.3f}')

    os.makedirs(args.out_dir, exist_ok=True)
    panels = [draw_masks(image, coarse, 'coarse'), draw_masks(image, result.masks, 'refined')]
    if truth is not None:
        panels.append(draw_masks(image, truth, 'true'))
    out_path = osp.join(args.out_dir, 'demo.png')
    cv2.imwrite(out_path, cv2.cvtColor(side_by_side(panels), cv2.COLOR_RGB2BGR))
    print(f'saved {out_path}')


if __name__ == '__main__':
    main()
