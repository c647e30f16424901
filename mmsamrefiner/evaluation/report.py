# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``tools/refine.py --eval``: coarse and refined collections against ground truth."""
import json
import os.path as osp
from typing import Dict

from mmsamrefiner.io.coarse_masks import (BinaryMasks, CocoInstances, LabelMaps,
                                          read_binary_mask, read_label_map)
from .collections import (evaluate_instances, evaluate_label_maps,
                          evaluate_mask_pairs)


def evaluate_collection(args, source) -> Dict[str, Dict[str, float]]:
    """``{'coarse': metrics, 'refined': metrics}`` for the collection of ``args``
    (``args.out`` refined, ``args.eval`` ground truth in the input format)."""
    if isinstance(source, CocoInstances):
        with open(args.eval) as f:
            gt = json.load(f)
        with open(args.out) as f:
            refined = json.load(f)
        return dict(coarse=evaluate_instances(source.coco, gt),
                    refined=evaluate_instances(refined, gt))
    items = source.items()
    if isinstance(source, LabelMaps):
        def pairs(which):
            for item in items:
                gt, _ = read_label_map(osp.join(args.eval, item.key + '.png'))
                if which == 'coarse':
                    pred, _ = source.load(item)
                else:
                    pred, _ = read_label_map(osp.join(args.out, item.key + '.png'))
                yield pred, gt
        return {which: evaluate_label_maps(pairs(which), args.ignore_index)
                for which in ('coarse', 'refined')}
    assert isinstance(source, BinaryMasks)

    def mask_pairs(which):
        for item in items:
            root = args.mask_dir if which == 'coarse' else args.out
            for name in item.meta['names']:
                yield (read_binary_mask(osp.join(root, item.key, name)),
                       read_binary_mask(osp.join(args.eval, item.key, name)))
    return {which: evaluate_mask_pairs(mask_pairs(which)) for which in ('coarse', 'refined')}


def format_table(scores: Dict[str, Dict[str, float]]) -> str:
    """A markdown table, metrics in percent, one row per collection."""
    columns = list(next(iter(scores.values())))
    names = dict(miou='mIoU', biou='boundary IoU', ap='mask AP', ap50='AP50', ap75='AP75')
    lines = ['| | ' + ' | '.join(names.get(c, c) for c in columns) + ' |',
             '| --- |' + ' ---: |' * len(columns)]
    for row, metrics in scores.items():
        lines.append(f'| {row} | ' + ' | '.join(f'{100 * metrics[c]:.1f}' for c in columns) + ' |')
    return '\n'.join(lines)
