# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Real mmdet and mmseg datasets whose pipelines end with RefineCoarseMasks (the
README's transform lines, on the tests' tiny SAM), on generated collections."""
import copy

import cv2
from mmengine.registry import DATASETS, DefaultScope

from ..mm_data import make_coco_dataset, make_seg_dataset
from ..readme_snippets import readme_snippet


def transform_cfg(tiny_sam_cfg, cache_dir, **options):
    cfg = copy.deepcopy(readme_snippet('mmdet-transform')['refine_coarse_masks'])
    cfg['refiner'].update(sam=tiny_sam_cfg, iters=2)
    cfg.update(cache_dir=str(cache_dir), keep_coarse=True, **options)
    return cfg


def coco_dataset(tmp_path, transform, to_float32=False, poly2mask=False):
    make_coco_dataset(tmp_path / 'coco', coarse=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        import mmsamrefiner  # noqa: F401 - custom_imports
        return DATASETS.build(dict(
            type='CocoDataset', data_root=str(tmp_path / 'coco'), ann_file='instances.json',
            data_prefix=dict(img='images/'),
            metainfo=dict(classes=('ellipse', 'polygon', 'ring', 'c_shape', 'thin_handle')),
            pipeline=[dict(type='LoadImageFromFile', to_float32=to_float32),
                      dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
                           poly2mask=poly2mask),
                      transform]))


def seg_dataset(tmp_path, transform):
    root = make_seg_dataset(tmp_path / 'seg', coarse=True)
    ann = cv2.imread(str(root / 'ann_dir' / '0000.png'), cv2.IMREAD_UNCHANGED)
    ann[:5, :5] = 255  # an ignored corner
    cv2.imwrite(str(root / 'ann_dir' / '0000.png'), ann)
    with DefaultScope.overwrite_default_scope('mmseg'):
        import mmsamrefiner  # noqa: F401
        return DATASETS.build(dict(
            type='BaseSegDataset', data_root=str(root),
            data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
            img_suffix='.png', seg_map_suffix='.png',
            metainfo=dict(classes=('background', 'ellipse', 'polygon', 'ring', 'c_shape',
                                   'thin_handle')),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                      transform]))
