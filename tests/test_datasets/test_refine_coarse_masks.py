# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""RefineCoarseMasks in real mmdet and mmseg dataset pipelines (README lines)."""
import os
import pickle

import cv2
import numpy as np
import pytest

from ..mm_data import HEIGHT, WIDTH
from .pipelines import coco_dataset, seg_dataset, transform_cfg


def test_mmdet_pipeline_refines_polygon_gt_masks_and_caches(tmp_path, tiny_sam_cfg):
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    dataset = coco_dataset(tmp_path, transform_cfg(tiny_sam_cfg, tmp_path / 'cache'))
    refine = dataset.pipeline.transforms[-1]
    first = dataset[0]
    assert isinstance(first['coarse_masks'], PolygonMasks)
    assert isinstance(first['gt_masks'], BitmapMasks)
    coarse = first['coarse_masks'].to_ndarray().astype(bool)
    refined = first['gt_masks'].to_ndarray().astype(bool)
    assert refined.shape == coarse.shape == (len(coarse), HEIGHT, WIDTH)
    assert (refined != coarse).any()
    # the BGR image the pipeline carries, refined as BGR
    expected = refine.refiner.refine(first['img'], coarse, channel_order='bgr').masks
    np.testing.assert_array_equal(refined, expected)
    assert (refine.num_refined, refine.num_cached) == (1, 0)

    second = dataset[0]  # the next epoch: a cache hit, same masks
    assert (refine.num_refined, refine.num_cached) == (1, 1)
    np.testing.assert_array_equal(second['gt_masks'].to_ndarray(), first['gt_masks'].to_ndarray())
    entries = [f for _, _, files in os.walk(tmp_path / 'cache') for f in files]
    assert len(entries) == 1 and entries[0].endswith('.npz')


@pytest.mark.parametrize('poly2mask', [False, True], ids=['from-polygons', 'from-bitmaps'])
def test_polygon_output_follows_the_refined_masks(tmp_path, tiny_sam_cfg, poly2mask):
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    dataset = coco_dataset(tmp_path, transform_cfg(tiny_sam_cfg, tmp_path / 'cache',
                                                   mask_format='polygon'), poly2mask=poly2mask)
    result = dataset[0]
    coarse_type = BitmapMasks if poly2mask else PolygonMasks
    assert isinstance(result['coarse_masks'], coarse_type)  # what LoadAnnotations gave
    assert isinstance(result['gt_masks'], PolygonMasks)  # whatever the input was
    refine = dataset.pipeline.transforms[-1]
    coarse = result['coarse_masks'].to_ndarray().astype(bool)
    expected = refine.refiner.refine(result['img'], coarse, channel_order='bgr').masks
    rasterised = result['gt_masks'].to_ndarray().astype(bool)
    for got, want in zip(rasterised, expected):
        # the outer contours of the refined mask, filled: holes are gone
        contours, _ = cv2.findContours(want.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        filled = cv2.drawContours(np.zeros(want.shape, np.uint8), contours, -1, 1, -1) > 0
        # polygons through pixel centres lose up to half a pixel of border,
        # which is much of the tiny random SAM's ragged masks: check that the
        # polygons lie on the refined masks
        assert got.sum() == 0 or (got & filled).sum() / got.sum() > 0.9


def test_masks_to_polygons_outlines_parts_and_fills_holes():
    from mmdet.structures.mask import PolygonMasks

    from mmsamrefiner.datasets.transforms import masks_to_polygons
    yy, xx = np.mgrid[:60, :80]
    ring = ((xx - 25) ** 2 + (yy - 30) ** 2 <= 20 ** 2) & ((xx - 25) ** 2 + (yy - 30) ** 2 > 8 ** 2)
    square = (xx >= 55) & (xx < 75) & (yy >= 10) & (yy < 30)
    masks = np.stack([ring | square, np.zeros_like(ring)])
    polygons = masks_to_polygons(masks)
    assert len(polygons[0]) == 2  # two parts
    np.testing.assert_array_equal(polygons[1], [np.zeros(6)])  # empty: mmdet's zero polygon
    raster = PolygonMasks(polygons, 60, 80).to_ndarray().astype(bool)
    filled = ((xx - 25) ** 2 + (yy - 30) ** 2 <= 20 ** 2) | square
    assert (raster[0] & filled).sum() / (raster[0] | filled).sum() > 0.9
    assert not raster[1].any()


def test_failure_keeps_coarse_masks_and_is_counted(tmp_path, tiny_sam_cfg, caplog):
    dataset = coco_dataset(tmp_path, transform_cfg(tiny_sam_cfg, tmp_path / 'cache'))
    refine = dataset.pipeline.transforms[-1]

    def broken(*args, **kwargs):
        raise RuntimeError('injected failure')

    refine.refiner.refine = broken
    result = dataset[1]
    np.testing.assert_array_equal(result['gt_masks'].to_ndarray(),
                                  result['coarse_masks'].to_ndarray())
    assert refine.num_failed == 1

    refine.strict = True
    with pytest.raises(RuntimeError, match='injected failure'):
        dataset[1]


def test_mask_size_mismatch_is_reported(tmp_path, tiny_sam_cfg):
    from mmdet.structures.mask import BitmapMasks

    from mmsamrefiner import RefineCoarseMasks
    transform = RefineCoarseMasks(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg), strict=True)
    results = dict(img=np.zeros((40, 50, 3), np.uint8),
                   gt_masks=BitmapMasks(np.ones((1, 20, 25), np.uint8), 20, 25))
    with pytest.raises(ValueError, match=r'gt_masks are \(20, 25\) but img is \(40, 50\)'):
        transform(results)
    with pytest.raises(KeyError, match='gt_masks'):
        transform(dict(img=np.zeros((4, 5, 3), np.uint8)))


def test_mmseg_pipeline_refines_label_map_and_keeps_ignored_pixels(tmp_path, tiny_sam_cfg):
    cfg = transform_cfg(tiny_sam_cfg, tmp_path / 'cache', background=0, ignore_index=255)
    dataset = seg_dataset(tmp_path, cfg)
    refine = dataset.pipeline.transforms[-1]
    result = dataset[0]
    coarse, refined = result['coarse_seg_map'], result['gt_seg_map']
    assert refined.shape == coarse.shape == (HEIGHT, WIDTH) and refined.dtype == coarse.dtype
    assert (refined != coarse).any()
    assert (refined[:5, :5] == 255).all()
    expected = refine.refiner.refine_semantic(result['img'], coarse, ignore_index=255,
                                              background=0, channel_order='bgr')
    np.testing.assert_array_equal(refined, expected)
    again = dataset[0]
    assert refine.num_cached == 1
    np.testing.assert_array_equal(again['gt_seg_map'], refined)


def test_transform_pickles_without_its_sam(tiny_sam_cfg):
    from mmsamrefiner import RefineCoarseMasks
    transform = RefineCoarseMasks(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg))
    transform.refiner  # built in this process
    clone = pickle.loads(pickle.dumps(transform))
    assert clone._refiner is None  # a spawned worker builds its own
    assert 'RefineCoarseMasks(refiner=' in repr(clone)
