#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refine coarse masks of one image and save a picture of before and after.

With no arguments it runs on an embedded default: a generated scene whose
coarse masks are the true ones dilated by 5 pixels (``--defect`` for others), refined by the toy
SAM that
ships in the package (SAM's prompt encoder and mask decoder behind a small
convolutional image encoder, trained on generated scenes by
``tools/train_toy_sam.py``; a test and demo model, not a substitute for SAM on
real photos).  It prints the IoU of the coarse and refined masks against the
true ones and writes image | coarse | refined | true side by side::

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
from mmsamrefiner.refiner.sam import SAM_CHECKPOINT_URLS
from mmsamrefiner.synthetic import make_coarse_masks, make_scene
from mmsamrefiner.synthetic.defects import DEFECTS
from mmsamrefiner.visualization import draw_masks, side_by_side


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--image', help='image path (default: a generated scene)')
    parser.add_argument('--masks', nargs='+', default=[],
                        help='binary mask PNGs (0/255 or 0/1), one per object')
    parser.add_argument('--arch', default='toy',
                        help='SAM arch: vit_b, vit_l, vit_h or toy (default)')
    parser.add_argument('--checkpoint',
                        help="SAM checkpoint path or URL (default: the shipped "
                        "toy SAM for --arch toy); 'none' for random weights")
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--elastic-margin', '--margin', type=float, default=0.0,
                        help='the elastic box\'s threshold lambda (0: off; --margin: its '
                        'old name)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0, help='seed of the generated scene')
    parser.add_argument('--defect', default='dilate', choices=DEFECTS + ('random', ),
                        help='how the generated coarse masks are spoiled (default: dilated by '
                        '5 px, like loose pseudo-labels; random: one random defect per mask)')
    parser.add_argument('--out-dir', default='outputs/demo')
    return parser.parse_args()


def load_inputs(args):
    """(RGB image, coarse masks, true masks or None) from files or a generated scene."""
    if args.image is None:
        scene = make_scene(seed=args.seed, height=288, width=384, num_objects=4)
        defect = None if args.defect == 'random' else args.defect
        coarse = make_coarse_masks(scene.masks, seed=args.seed, amount=5, defect=defect)
        return scene.image, coarse, scene.masks
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
    checkpoint = args.checkpoint or SAM_CHECKPOINT_URLS.get(args.arch)
    if checkpoint in (None, 'none'):
        checkpoint = None
        torch.manual_seed(args.seed)
        print(f'NOTE: no checkpoint, so SAM {args.arch} has RANDOM weights: the '
              'whole pipeline runs, but its refined masks are meaningless.')
    elif args.arch == 'toy':
        print('SAM: the shipped toy SAM (trained on generated scenes; a test and '
              'demo model, not a substitute for SAM on real photos)')
    sam_cfg = dict(type='SAM', arch=args.arch, checkpoint=checkpoint)
    refiner = SAMRefiner(sam_cfg, iters=args.iters, elastic_margin=args.elastic_margin,
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
    def title(name, masks):
        if truth is None:
            return name
        return f'{name}: mIoU {mask_iou(masks, truth).mean():.3f}'

    panels = [image, draw_masks(image, coarse, title('coarse', coarse)),
              draw_masks(image, result.masks, title('refined', result.masks))]
    if truth is not None:
        panels.append(draw_masks(image, truth, 'true'))
    out_path = osp.join(args.out_dir, 'demo.png')
    cv2.imwrite(out_path, cv2.cvtColor(side_by_side(panels), cv2.COLOR_RGB2BGR))
    print(f'saved {out_path}')


if __name__ == '__main__':
    main()
