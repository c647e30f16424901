# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Coarse-mask datasets for SAMRefiner++: one item per mask, gt pairing, errors."""
import json

import cv2
import numpy as np
import pytest
import torch

from mmsamrefiner.datasets import CocoCoarseMaskDataset, LabelMapCoarseMaskDataset
from mmsamrefiner.registry import DATASETS, build_in_scope


def box_polygon(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def write_json(path, anns, images=({'id': 1, 'file_name': 'a.png', 'height': 20, 'width': 30},)):
    path.write_text(json.dumps(dict(images=list(images), annotations=anns,
                                    categories=[dict(id=1, name='thing')])))
    return str(path)


def ann(ann_id, polygon, **extra):
    return dict(dict(id=ann_id, image_id=1, category_id=1, segmentation=polygon, iscrowd=0),
                **extra)


@pytest.fixture
def coco_dir(tmp_path):
    (tmp_path / 'img').mkdir()
    cv2.imwrite(str(tmp_path / 'img' / 'a.png'), np.zeros((20, 30, 3), np.uint8))
    return tmp_path


def test_one_item_per_refinable_annotation(coco_dir):
    coarse = write_json(coco_dir / 'coarse.json', [
        ann(1, box_polygon(2, 2, 10, 10)), ann(2, box_polygon(15, 5, 25, 15)),
        ann(3, box_polygon(0, 0, 5, 5), iscrowd=1)])  # crowd: left out
    dataset = CocoCoarseMaskDataset(coarse, str(coco_dir / 'img'))
    assert len(dataset) == 2
    item = dataset[1]
    assert item['inputs']['img_path'].endswith('a.png')
    mask = item['inputs']['coarse_mask']
    assert mask.dtype == torch.bool and mask.shape == (20, 30)
    assert mask[5:15, 15:25].all() and not mask[:, :14].any()  # xy polygon -> (H, W)
    assert item['data_samples'] == dict(img_path=item['inputs']['img_path'],
                                        instance_id='1/2', gt_mask=None)
    with pytest.raises(IndexError):
        dataset[2]


def test_gt_paired_by_annotation_id(coco_dir):
    coarse = write_json(coco_dir / 'coarse.json', [ann(7, box_polygon(2, 2, 10, 10)),
                                                   ann(8, box_polygon(15, 5, 25, 15))])
    gt = write_json(coco_dir / 'gt.json', [ann(8, box_polygon(16, 6, 26, 16)),
                                           ann(7, box_polygon(1, 1, 9, 9))])
    dataset = CocoCoarseMaskDataset(coarse, str(coco_dir / 'img'), gt_ann_file=gt)
    assert dataset[0]['data_samples']['gt_mask'][1:9, 1:9].all()
    assert dataset[1]['data_samples']['gt_mask'][6:16, 16:26].all()
    assert 'with_gt=2' in repr(dataset)


def test_gt_paired_by_iou_when_ids_differ(coco_dir):
    coarse = write_json(coco_dir / 'coarse.json', [ann(1, box_polygon(2, 2, 10, 10)),
                                                   ann(2, box_polygon(15, 5, 25, 15))])
    gt = write_json(coco_dir / 'gt.json', [ann(50, box_polygon(16, 6, 26, 16)),
                                           ann(60, box_polygon(1, 1, 9, 9))])
    dataset = CocoCoarseMaskDataset(coarse, str(coco_dir / 'img'), gt_ann_file=gt)
    first, second = (dataset[i]['data_samples']['gt_mask'] for i in range(2))
    assert first[1:9, 1:9].all() and not first[:, 12:].any()
    assert second[6:16, 16:26].all() and not second[:, :12].any()


def test_gt_json_without_the_image_is_refused(coco_dir):
    coarse = write_json(coco_dir / 'coarse.json', [ann(1, box_polygon(2, 2, 10, 10))])
    gt = write_json(coco_dir / 'gt.json', [], images=[
        dict(id=2, file_name='b.png', height=20, width=30)])
    with pytest.raises(ValueError, match='image 1 .* not in the ground-truth json'):
        CocoCoarseMaskDataset(coarse, str(coco_dir / 'img'), gt_ann_file=gt)


def test_label_maps_split_into_instances_and_paired_with_gt(tmp_path):
    for sub in ('img', 'coarse', 'gt'):
        (tmp_path / sub).mkdir()
    cv2.imwrite(str(tmp_path / 'img' / 'x.jpg'), np.zeros((40, 60, 3), np.uint8))
    coarse = np.zeros((40, 60), np.uint8)
    coarse[2:12, 2:12] = 1   # class 1, far apart: two instances
    coarse[25:38, 40:58] = 1
    coarse[20:30, 15:25] = 2
    coarse[0:2, 50:60] = 255  # ignored
    gt = np.zeros_like(coarse)
    gt[3:13, 3:13] = 1
    gt[24:38, 41:59] = 1
    cv2.imwrite(str(tmp_path / 'coarse' / 'x.png'), coarse)
    cv2.imwrite(str(tmp_path / 'gt' / 'x.png'), gt)
    dataset = LabelMapCoarseMaskDataset('coarse', 'img', gt_label_dir='gt',
                                        data_root=str(tmp_path))
    assert len(dataset) == 3
    items = [dataset[i] for i in range(3)]
    assert [i['data_samples']['instance_id'] for i in items] == ['x/0', 'x/1', 'x/2']
    masks = [i['inputs']['coarse_mask'].numpy() for i in items]
    np.testing.assert_array_equal(masks[0] | masks[1], coarse == 1)
    np.testing.assert_array_equal(masks[2], coarse == 2)
    gts = [i['data_samples']['gt_mask'] for i in items]
    assert gts[2] is None  # no class-2 ground truth
    for mask, gt_mask in zip(masks[:2], gts[:2]):
        gt_mask = gt_mask.numpy()
        assert (mask & gt_mask).sum() > 0.6 * mask.sum()  # its own instance
    assert items[0]['inputs']['img_path'].endswith('x.jpg')


def test_datasets_build_from_the_registry(coco_dir):
    write_json(coco_dir / 'coarse.json', [ann(1, box_polygon(2, 2, 10, 10))])
    dataset = build_in_scope(dict(type='CocoCoarseMaskDataset', ann_file='coarse.json',
                                  img_dir='img', data_root=str(coco_dir)), DATASETS)
    assert len(dataset) == 1
