# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``tools/refine.py --eval``: coarse and refined collections against ground truth.

Images whose refinement failed (their output is the coarse input, possibly
malformed) and images whose masks cannot be read or decoded (coarse, refined
or ground truth: a polygon of fewer than 3 points, an RLE of another size, an
annotation without ``id``, a missing file, ...) are left out of both the coarse
and the refined scores, and counted in a :class:`~mmsamrefiner.mask_io.left_out.
LeftOut`.
"""
import os.path as osp
from typing import Dict, Optional

import numpy as np

from mmsamrefiner.mask_io.coarse_masks import (
    READ_ERRORS,
    BinaryMasks,
    CocoInstances,
    LabelMaps,
    decode_segmentation,
    read_binary_mask,
    read_label_map,
)
from mmsamrefiner.mask_io.left_out import LeftOut
from mmsamrefiner.utils.file_keys import file_key

from .collection_metrics import evaluate_instances, label_map_stats, reduce_label_map_stats
from .functional import boundary_iou, mask_iou


def evaluate_collection(collection, gt: str, left_out: Optional[LeftOut] = None,
                        ignore_index: int = 255) -> Dict[str, Dict[str, float]]:
    """``{'coarse': metrics, 'refined': metrics}`` of a collection
    (:class:`~mmsamrefiner.mask_io.mask_collections.MaskCollection`: its
    coarse input, ``source``, and its refined output, ``refined_path``)
    against the ground truth ``gt`` (in the input format), by the function
    below for the collection's format.

    Args:
        left_out: images to leave out (e.g. ``LeftOut(records)``: those that
            failed); images whose masks cannot be read are added to it.  None:
            only those.
        ignore_index: label maps' ignored label.
    """
    if left_out is None:
        left_out = LeftOut()
    source, refined = collection.source, collection.refined_path
    if isinstance(source, CocoInstances):
        return evaluate_coco(source, refined, gt, left_out)
    if isinstance(source, LabelMaps):
        return evaluate_label_maps(source, refined, gt, left_out, ignore_index)
    if isinstance(source, BinaryMasks):
        return evaluate_binary_masks(source, refined, gt, left_out)
    raise TypeError(f'no scores for a collection of {type(source).__name__}')


def _annotation_problem(ann: dict, position, height, width) -> Optional[str]:
    """Why :func:`evaluate_instances` cannot use ``ann``, or None."""
    if 'id' not in ann:
        return f'annotation at position {position} of "annotations" has no "id"'
    if 'category_id' not in ann:
        return f'annotation {ann["id"]} has no "category_id"'
    if not ann.get('segmentation'):
        return f'annotation {ann["id"]} has no segmentation'
    try:
        decode_segmentation(ann['segmentation'], height, width)
    except ValueError as error:  # a malformed segmentation (its documented error)
        return f'annotation {ann["id"]}: {error}'
    return None


def _instance_image_problem(image: dict, collections) -> Optional[str]:
    """Why an image of the ground truth cannot be scored, or None.
    ``collections``: ``(name, CocoInstances, with crowd annotations)``."""
    height, width = image.get('height'), image.get('width')
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
               for v in (height, width)):
        return (f'ground truth: image {image["id"]} has no valid "height" and "width" '
                f'(got {height}, {width})')
    for name, collection, crowd in collections:
        for ann in collection.anns_of.get(image['id'], []):
            if ann.get('iscrowd', 0) and not crowd:
                continue  # not scored
            problem = _annotation_problem(ann, collection._position.get(id(ann)), height,
                                          width)
            if problem:
                return f'{name}: {problem}'
    return None


def evaluate_coco(source: CocoInstances, refined_file: str, gt_file: str,
                  left_out: LeftOut) -> Dict[str, Dict[str, float]]:
    """COCO instances: coarse (``source``) and refined (``refined_file``)
    against ``gt_file`` (images relative to ``source.img_dir``)."""
    gt = CocoInstances(gt_file, source.img_dir)
    refined = CocoInstances(refined_file, source.img_dir)
    collections = (('ground truth', gt, True), ('coarse', source, False),
                   ('refined', refined, False))
    kept = []
    for image in gt.coco['images']:
        if file_key(image['id']) in left_out:
            continue
        problem = _instance_image_problem(image, collections)
        if problem:
            left_out.add(file_key(image['id']), problem)
        else:
            kept.append(image)
    # only the ground truth's images are scored: predictions of others are ignored
    kept_ids = {im['id'] for im in kept}
    gt_coco = dict(gt.coco, images=kept,
                   annotations=[a for a in gt.coco.get('annotations', [])
                                if a['image_id'] in kept_ids])
    return dict(coarse=evaluate_instances(_scored(source.coco, kept_ids), gt_coco),
                refined=evaluate_instances(_scored(refined.coco, kept_ids), gt_coco))


def _scored(coco: dict, image_ids) -> dict:
    return dict(coco, annotations=[a for a in coco.get('annotations', [])
                                   if a['image_id'] in image_ids])


def evaluate_label_maps(source: LabelMaps, refined_dir: str, gt_dir: str, left_out: LeftOut,
                        ignore_index: int = 255) -> Dict[str, Dict[str, float]]:
    """Label maps: coarse (``source``) and refined (``refined_dir``, named by
    item key) against ``gt_dir`` (same stems)."""
    stats = dict(coarse=[], refined=[])
    for item in source.items():
        if item.key in left_out:
            continue
        which = 'ground truth'
        try:
            gt, _ = read_label_map(osp.join(gt_dir, item.name + '.png'))
            which = 'coarse'
            maps = dict(coarse=source.load(item)[0])
            which = 'refined'
            maps['refined'], _ = read_label_map(osp.join(refined_dir, item.key + '.png'))
            for which, label_map in maps.items():
                if label_map.shape != gt.shape:
                    raise ValueError(f'the label map is {label_map.shape[0]}x'
                                     f'{label_map.shape[1]}, the ground truth '
                                     f'{gt.shape[0]}x{gt.shape[1]}')
        except READ_ERRORS as error:  # this image is left out, with the reason
            left_out.add(item.key, f'{which}: {type(error).__name__}: {error}')
            continue
        for which, label_map in maps.items():
            stats[which].append(label_map_stats(label_map, gt, ignore_index))
    return {which: reduce_label_map_stats(image_stats) for which, image_stats in stats.items()}


def evaluate_binary_masks(source: BinaryMasks, refined_dir: str, gt_dir: str,
                          left_out: LeftOut) -> Dict[str, Dict[str, float]]:
    """Binary masks: coarse (``source``) and refined (``refined_dir``, folders
    named by item key) against ``gt_dir`` (same layout as the source), mask by
    mask (same names)."""
    ious = dict(coarse=[], refined=[])
    bious = dict(coarse=[], refined=[])
    roots = dict(coarse=source.mask_dir, refined=refined_dir)
    folder = dict(coarse=lambda item: item.name, refined=lambda item: item.key)
    for item in source.items():
        if item.key in left_out:
            continue
        which, pairs = 'ground truth', dict(coarse=[], refined=[])
        try:
            for name in item.meta['names']:
                which = 'ground truth'
                gt = read_binary_mask(osp.join(gt_dir, item.name, name))
                for which, root in roots.items():
                    pred = read_binary_mask(osp.join(root, folder[which](item), name))
                    if pred.shape != gt.shape:
                        raise ValueError(f'{name} is {pred.shape[0]}x{pred.shape[1]}, the '
                                         f'ground truth {gt.shape[0]}x{gt.shape[1]}')
                    pairs[which].append((pred, gt))
        except READ_ERRORS as error:  # this image is left out, with the reason
            left_out.add(item.key, f'{which}: {type(error).__name__}: {error}')
            continue
        for which, image_pairs in pairs.items():
            for pred, gt in image_pairs:
                ious[which].extend(mask_iou(pred[None], gt[None]))
                bious[which].extend(boundary_iou(pred[None], gt[None]))
    return {which: dict(miou=float(np.mean(ious[which])) if ious[which] else 0.0,
                        biou=float(np.mean(bious[which])) if bious[which] else 0.0)
            for which in roots}


def format_table(scores: Dict[str, Dict[str, float]]) -> str:
    """A markdown table, metrics in percent, one row per collection."""
    columns = list(next(iter(scores.values())))
    names = dict(miou='mIoU', biou='boundary IoU', ap='mask AP', ap50='AP50', ap75='AP75')
    lines = ['| | ' + ' | '.join(names.get(c, c) for c in columns) + ' |',
             '| --- |' + ' ---: |' * len(columns)]
    for row, metrics in scores.items():
        lines.append(f'| {row} | ' + ' | '.join(f'{100 * metrics[c]:.1f}' for c in columns) + ' |')
    return '\n'.join(lines)
