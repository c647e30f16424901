# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The shipped configs parse and describe what their names say."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmsamrefiner.refiner.sam import (HQ_CHECKPOINT_URLS, SAM2_CHECKPOINT_URLS,
                                      SAM_CHECKPOINT_URLS)

CHECKPOINT_URLS = dict(sam=SAM_CHECKPOINT_URLS, hq=HQ_CHECKPOINT_URLS, sam2=SAM2_CHECKPOINT_URLS)

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs', 'samrefiner')


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(CONFIG_DIR, '*.py'))))
def test_refiner_configs(path):
    cfg = Config.fromfile(path).refiner
    assert cfg.type == 'SAMRefiner'
    arch, family = cfg.sam.arch, cfg.sam.get('family', 'sam')
    assert arch in osp.basename(path)
    assert (family == 'sam') == ('_hq_' not in path and '_sam2_' not in path)
    assert cfg.sam.checkpoint == CHECKPOINT_URLS[family][arch]  # one switch: the sam dict
    assert cfg.margin == (0.1 if 'cebox' in path else 0.0)
    assert cfg.box_geometry == 'authors'
    assert cfg.iters == 5 and cfg.gamma == 4.0 and cfg.strength == 30.0


MM_CONFIGS = {
    'mmdet/mask-rcnn_r50_fpn_1x_coco_samrefiner-test.py': 'hook',
    'mmseg/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512_samrefiner-test.py': 'hook',
    'mmdet/mask-rcnn_r50_fpn_1x_coco_refined-coarse-gt.py': 'transform',
}
ROOT = osp.dirname(CONFIG_DIR)


@pytest.mark.parametrize('name', sorted(MM_CONFIGS))
def test_ready_mm_configs_inherit_real_configs_and_switch_samrefiner_in(name):
    cfg = Config.fromfile(osp.join(ROOT, name))
    assert cfg.custom_imports.imports == ['mmsamrefiner']
    refiner = None
    if MM_CONFIGS[name] == 'hook':
        (hook, ) = cfg.custom_hooks
        assert hook.type == 'mmsamrefiner.SAMRefinerHook'
        refiner = hook.refiner
        assert 'test_evaluator' in cfg  # the real mmdet/mmseg config underneath
    else:
        pipeline = cfg.train_dataloader.dataset.pipeline
        types = [t.type for t in pipeline]
        # right after LoadAnnotations, before any geometric transform
        assert types[:3] == ['LoadImageFromFile', 'LoadAnnotations',
                             'mmsamrefiner.RefineCoarseMasks']
        refiner = pipeline[2].refiner
    assert refiner.type == 'SAMRefiner'
    assert refiner.sam.arch == 'vit_h'
    assert refiner.sam.checkpoint == SAM_CHECKPOINT_URLS['vit_h']
    if 'mmseg' in name:
        assert cfg.default_scope == 'mmseg' and hook.background == 0
    else:
        assert cfg.default_scope == 'mmdet'


ADAPT_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'samrefiner_pp', '*.py')))


@pytest.mark.parametrize('path', ADAPT_CONFIGS)
def test_adaption_configs_carry_the_authors_settings(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmsamrefiner' and cfg.randomness.seed == 0
    assert cfg.model.type == 'IoUAdaptionModel'
    assert (cfg.model.rank, cfg.model.margin) == (4, 0.02)
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=1e-2, momentum=0.9,
                                               weight_decay=5e-4)
    (scheduler, ) = cfg.param_scheduler
    assert (scheduler.type, scheduler.by_epoch, scheduler.milestones, scheduler.gamma) == (
        'MultiStepLR', False, [60, 100], 0.1)
    assert cfg.train_cfg.max_epochs == 1 and cfg.train_dataloader.batch_size == 5
    # The authors drop the last partial group of 5 accumulated samples.
    assert cfg.train_dataloader.drop_last is True and cfg.val_dataloader.drop_last is False
    assert cfg.model.refiner.iters == 1  # the authors' DAVIS-585 evaluation
    assert {'type': 'SaveIoUAdapterHook', 'filename': 'iou_adapter.pth'} in cfg.custom_hooks
    assert cfg.val_evaluator.type == 'IoURankingMetric'
    dataset = cfg.train_dataloader.dataset.type
    assert dataset == ('LabelMapCoarseMaskDataset' if 'labelmaps' in path
                       else 'CocoCoarseMaskDataset')
    arch = cfg.model.refiner.sam.arch
    assert arch.replace('_', '-') in osp.basename(path)
    assert cfg.model.refiner.sam.checkpoint == SAM_CHECKPOINT_URLS[arch]


@pytest.mark.parametrize('path', ADAPT_CONFIGS)
def test_adaption_configs_drop_the_last_partial_batch_in_training_only(path):
    from mmengine.runner import Runner
    cfg = Config.fromfile(path)
    sizes = {}
    for name in ('train_dataloader', 'val_dataloader'):
        loader_cfg = dict(cfg[name], dataset=list(range(12)), num_workers=0,
                          persistent_workers=False)
        sizes[name] = [len(batch) for batch in Runner.build_dataloader(loader_cfg, seed=0)]
    assert sizes == dict(train_dataloader=[5, 5], val_dataloader=[5, 5, 2])
