#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Write a generated COCO-format collection: true masks and coarse copies.

    python tools/make_synthetic_collection.py data/synthetic --images 20

gives ``data/synthetic/gt/{images,instances.json}`` and
``data/synthetic/coarse/{images,instances.json}`` (the same images; each
coarse mask spoiled by one random defect), for trying ``tools/refine.py``.
``--crowded``: COCO-like scenes of 5-20 objects of mixed sizes
(:func:`~mmsamrefiner.synthetic.scenes.make_crowded_scene`), as the speed
benchmark's collection (``tools/benchmark_speed.py --collection``):

    python tools/make_synthetic_collection.py data/crowded --images 200 --crowded \
        --height 480 --width 640
"""
import argparse
import os.path as osp
from functools import partial

from mmsamrefiner.synthetic.coco_collection import write_coco_collection
from mmsamrefiner.synthetic.scenes import make_crowded_scene


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--images', type=int, default=20)
    parser.add_argument('--seed', type=int, default=30_000_000)
    parser.add_argument('--height', type=int, default=288)
    parser.add_argument('--width', type=int, default=384)
    parser.add_argument('--crowded', action='store_true',
                        help='5-20 objects of mixed sizes an image (COCO-like; --objects unused)')
    parser.add_argument('--objects', type=int, default=4,
                        help='shapes drawn per image (those hidden by later ones are dropped)')
    args = parser.parse_args()
    make = partial(make_crowded_scene, height=args.height, width=args.width) \
        if args.crowded else None
    for name, coarse in (('gt', False), ('coarse', True)):
        path = write_coco_collection(osp.join(args.out_dir, name), args.images, coarse,
                                     args.seed, args.height, args.width,
                                     num_objects=args.objects, make=make)
        print(f'wrote {path}')


if __name__ == '__main__':
    main()
