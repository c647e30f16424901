# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Scoring whole mask collections against ground truth (``tools/refine.py --eval``).

* instances (COCO json vs COCO json): mean IoU and boundary IoU of matched
  masks (by annotation id where the ids agree, else greedily by IoU within the
  image; an unmatched mask scores 0), and mask AP through pycocotools with every
  mask scored by its ``score`` field (1 when absent), so coarse and refined
  collections are ranked alike and AP changes only through the masks;
* label maps: class mIoU over the dataset (intersections and unions summed over
  images, ``ignore_index`` pixels left out) and the mean boundary IoU of
  per-image class masks;
* binary masks: mean IoU and boundary IoU of same-named masks.
"""
import contextlib
import io
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from mmsamrefiner.mask_io.coarse_masks import decode_segmentation
from mmsamrefiner.utils.masks import match_masks

from .functional import boundary_iou, mask_iou


def evaluate_instances(pred_coco: dict, gt_coco: dict) -> Dict[str, float]:
    """``miou``, ``biou`` (matched masks) and ``ap``, ``ap50``, ``ap75`` (segm)."""
    images = {im['id']: im for im in gt_coco['images']}
    gt_of: Dict[object, List[dict]] = {i: [] for i in images}
    pred_of: Dict[object, List[dict]] = {i: [] for i in images}
    for ann in gt_coco['annotations']:
        if not ann.get('iscrowd', 0):
            gt_of[ann['image_id']].append(ann)
    for ann in pred_coco['annotations']:
        if ann['image_id'] in pred_of and not ann.get('iscrowd', 0):
            pred_of[ann['image_id']].append(ann)
    ious, bious = [], []
    for image_id, image in images.items():
        h, w = image['height'], image['width']
        gts, preds = gt_of[image_id], pred_of[image_id]
        if not preds:
            continue
        pred_masks = np.stack([decode_segmentation(a['segmentation'], h, w) for a in preds])
        gt_masks = (np.stack([decode_segmentation(a['segmentation'], h, w) for a in gts]) if gts
                    else np.zeros((0, h, w), bool))
        gt_index = {a['id']: k for k, a in enumerate(gts)}
        pairs = ([(k, gt_index[a['id']]) for k, a in enumerate(preds)]
                 if all(a['id'] in gt_index for a in preds) else None)
        image_ious, image_bious = instance_stats(pred_masks, gt_masks, pairs)
        ious.extend(image_ious)
        bious.extend(image_bious)
    metrics = dict(miou=float(np.mean(ious)) if ious else 0.0,
                   biou=float(np.mean(bious)) if bious else 0.0)
    metrics.update(coco_mask_ap(pred_coco, gt_coco))
    return metrics


def coco_mask_ap(pred_coco: dict, gt_coco: dict) -> Dict[str, float]:
    """Mask AP, AP50 and AP75 of ``pred_coco``'s annotations against ``gt_coco``."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    results = []
    images = {im['id']: im for im in gt_coco['images']}
    for ann in pred_coco['annotations']:
        if ann['image_id'] not in images or ann.get('iscrowd', 0):
            continue
        image = images[ann['image_id']]
        rle = mask_utils.encode(np.asfortranarray(
            decode_segmentation(ann['segmentation'], image['height'],
                                image['width']).astype(np.uint8)))
        results.append(dict(image_id=ann['image_id'], category_id=ann['category_id'],
                            segmentation=rle, score=float(ann.get('score', 1.0))))
    if not results:
        return dict(ap=0.0, ap50=0.0, ap75=0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {k: v for k, v in gt_coco.items()}
        gt.dataset.setdefault('info', {})
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, 'segm')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(ap=float(evaluator.stats[0]), ap50=float(evaluator.stats[1]),
                ap75=float(evaluator.stats[2]))


def label_map_stats(pred: np.ndarray, gt: np.ndarray, ignore_index: Optional[int] = 255):
    """One image's share of :func:`evaluate_label_maps`: per-class
    intersections and unions (dicts) and the boundary IoUs of its class masks."""
    valid = gt != ignore_index if ignore_index is not None else np.ones_like(gt, bool)
    classes = sorted(set(np.unique(pred[valid])) | set(np.unique(gt[valid])))
    classes = [int(c) for c in classes if c != ignore_index]
    if not classes:
        return {}, {}, []
    pred_masks = np.stack([(pred == c) & valid for c in classes])
    gt_masks = np.stack([(gt == c) & valid for c in classes])
    inter = {c: int((p & g).sum()) for c, p, g in zip(classes, pred_masks, gt_masks)}
    union = {c: int((p | g).sum()) for c, p, g in zip(classes, pred_masks, gt_masks)}
    return inter, union, list(boundary_iou(pred_masks, gt_masks))


def reduce_label_map_stats(stats) -> Dict[str, float]:
    """``miou`` and ``biou`` from :func:`label_map_stats` of many images."""
    inter, union, bious = {}, {}, []
    for image_inter, image_union, image_bious in stats:
        for c in image_inter:
            inter[c] = inter.get(c, 0) + image_inter[c]
            union[c] = union.get(c, 0) + image_union[c]
        bious.extend(image_bious)
    ious = [inter[c] / union[c] for c in inter if union[c] > 0]
    return dict(miou=float(np.mean(ious)) if ious else 0.0,
                biou=float(np.mean(bious)) if bious else 0.0)


def evaluate_label_maps(pairs: Iterable[Tuple[np.ndarray, np.ndarray]],
                        ignore_index: Optional[int] = 255) -> Dict[str, float]:
    """``miou`` (dataset class IoU, mean over classes present in either) and
    ``biou`` (mean boundary IoU of per-image class masks) of (pred, gt) maps."""
    return reduce_label_map_stats(label_map_stats(p, g, ignore_index) for p, g in pairs)


def instance_stats(pred: np.ndarray, gt: np.ndarray,
                   pairs: Optional[List[Tuple[int, int]]] = None):
    """One image's matched IoUs and boundary IoUs of (N, H, W) / (M, H, W) bool
    masks: ``pairs`` of (pred, gt) indices, default greedy matching
    (:func:`match_masks`); an unmatched prediction scores 0."""
    if pairs is None:
        pairs = match_masks(pred, gt)
    ious, bious = [], []
    if pairs:
        pi, gi = map(list, zip(*pairs))
        ious, bious = list(mask_iou(pred[pi], gt[gi])), list(boundary_iou(pred[pi], gt[gi]))
    missing = len(pred) - len(pairs)
    return ious + [0.0] * missing, bious + [0.0] * missing


def evaluate_mask_pairs(pairs: Iterable[Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
    """``miou`` and ``biou`` of (pred, gt) (H, W) bool mask pairs."""
    ious, bious = [], []
    for pred, gt in pairs:
        ious.extend(mask_iou(pred[None], gt[None]))
        bious.extend(boundary_iou(pred[None], gt[None]))
    return dict(miou=float(np.mean(ious)) if ious else 0.0,
                biou=float(np.mean(bious)) if bious else 0.0)
