# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The shipped configs parse, are built from ``_base_`` pieces that inherit no
leaf, hold only the top-level keys they are for, and mean what they meant
before the config tree was rebuilt (values recorded from the old configs)."""
import ast
import glob
import inspect
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hub import get_config

from mmsamrefiner.engine.hooks import SAMRefinerHook
from mmsamrefiner.refiner.sam import HQ_CHECKPOINT_URLS, SAM2_CHECKPOINT_URLS, SAM_CHECKPOINT_URLS

CHECKPOINT_URLS = dict(sam=SAM_CHECKPOINT_URLS, hq=HQ_CHECKPOINT_URLS, sam2=SAM2_CHECKPOINT_URLS)

ROOT = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')
ALL_CONFIGS = sorted(osp.relpath(p, ROOT).replace(osp.sep, '/')
                     for p in glob.glob(osp.join(ROOT, '**', '*.py'), recursive=True))
CONFIG_DIR = osp.join(ROOT, 'samrefiner')

# Recorded from the configs before the rebuild (configs/samrefiner/samrefiner_vit_h.py,
# configs/_base_/hooks/samrefiner_hook.py, configs/_base_/transforms/refine_coarse_masks.py,
# the mmseg config's own hook and configs/samrefiner_pp/*), with `margin` renamed
# `elastic_margin` (refiner) and `ranking_margin` (adapter model's loss).
SAM_VIT_H = dict(type='SAM', arch='vit_h',
                 checkpoint='https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth')
REFINER_SETTINGS = dict(type='SAMRefiner', iters=5, use_point=True, use_box=True, use_mask=True,
                        add_neg=True, elastic_margin=0.0, box_geometry='authors', gamma=4.0,
                        strength=30.0, stm='residual', residual_passes=2, residual_opening=2,
                        residual_min_area=64, max_batch=64)
REFINER_VIT_H = dict(REFINER_SETTINGS, sam=SAM_VIT_H)
HOOK = dict(type='mmsamrefiner.SAMRefinerHook', refiner=REFINER_VIT_H, score_thr=0.0,
            keep_coarse=False, out_dir=None)
MMSEG_HOOK = dict(type='mmsamrefiner.SAMRefinerHook', refiner=REFINER_VIT_H, background=0,
                  ignore_index=255)
TRANSFORM = dict(type='mmsamrefiner.RefineCoarseMasks', refiner=REFINER_VIT_H, device='cpu',
                 cache_dir='data/samrefiner_cache', strict=False)
ADAPTER_MODEL = dict(type='IoUAdapterModel', rank=4, scale=1.0, ranking_margin=0.02,
                      embedding_cache=dict(cache_dir=None, in_memory=True), val_refine=True)
ADAPTER_REFINER = dict(type='SAMRefiner', iters=1, elastic_margin=0.0)
SAM_TOY = dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth')

CUSTOM_IMPORTS = dict(imports=['mmsamrefiner'], allow_failed_imports=False)
RUNTIME_KEYS = {'default_scope', 'custom_imports', 'env_cfg', 'randomness', 'default_hooks',
                'custom_hooks', 'log_processor', 'log_level', 'vis_backends', 'visualizer',
                'load_from', 'resume'}
SCHEDULE_KEYS = {'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'auto_scale_lr'}
# The mmdet/mmseg configs each ready config adds SAMRefiner to, and what it adds.
MM_CONFIGS = {
    'mmdet/mask-rcnn_r50_fpn_1x_coco_samrefiner-test.py':
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'hook'),
    'mmseg/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512_samrefiner-test.py':
    ('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py', 'hook'),
    'mmdet/mask-rcnn_r50_fpn_1x_coco_refined-coarse-gt.py':
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'transform'),
}
# Semi-supervised configs: the mmdet config whose layout they follow.
SEMI_CONFIGS = {
    'mmdet/semi-mask-detector_mask-rcnn_r50_fpn_180k_semi-0.1-coco_samrefiner.py':
    'mmdet::soft_teacher/soft-teacher_faster-rcnn_r50-caffe_fpn_180k_semi-0.1-coco.py',
}

MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
DEEPLAB = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py'
MMDET_PSEUDO = 'self_training/mask-rcnn_r50_fpn_samrefiner-pseudo-label_coco-unlabeled2017.py'
MMSEG_PSEUDO = 'self_training/deeplabv3plus_r50-d8_samrefiner-pseudo-label_voc-unlabeled-512x512.py'
# self-training configs: (upstream config, dataset type of the images, pseudo-label or student)
SELF_TRAINING_CONFIGS = {
    MMDET_PSEUDO: (MASK_RCNN, 'ImageFolderDetDataset', 'pseudo-label'),
    'self_training/mask-rcnn_r50_fpn_1x_coco+samrefiner-pseudo-labels.py':
    (MASK_RCNN, 'CocoDataset', 'student'),
    MMSEG_PSEUDO: (DEEPLAB, 'ImageFolderSegDataset', 'pseudo-label'),
    'self_training/deeplabv3plus_r50-d8_4xb4-20k_voc12aug+samrefiner-pseudo-labels-512x512.py':
    (DEEPLAB, 'ImageFolderSegDataset', 'student'),
}
# The toy round on generated data: the teacher (a small Mask R-CNN of its own data), and
# the pseudo-labelling and student configs that inherit it.
TOY_TEACHER = 'self_training/mask-rcnn_r18_fpn_1xb2-1e_synthetic.py'
TOY_PSEUDO = ('self_training/'
              'mask-rcnn_r18_fpn_samrefiner-pseudo-label_sam-toy_synthetic-unlabeled.py')
TOY_STUDENT = 'self_training/mask-rcnn_r18_fpn_1xb2-1e_synthetic+samrefiner-pseudo-labels.py'
# what the pseudo-labelling configs import: the package (it lets mmengine read its own checkpoints)
CHECKPOINT_IMPORTS = dict(imports=['mmsamrefiner'], allow_failed_imports=False)


def expected_keys(name: str) -> set:
    """The top-level keys config ``name`` (relative to configs/) is for."""
    if name.startswith('_base_/models/sam/'):
        return {'sam'}
    if name in ('_base_/models/samrefiner.py', ) or name.startswith('samrefiner/'):
        return {'refiner'}
    if name == '_base_/models/samrefiner-pp.py':
        return {'model'}
    if name.startswith('_base_/schedules/'):
        return SCHEDULE_KEYS
    if name == '_base_/default_runtime.py':
        return RUNTIME_KEYS
    if name == '_base_/hooks/samrefiner_hook.py':
        return {'custom_imports', 'custom_hooks'}
    if name == '_base_/transforms/refine_coarse_masks.py':
        return {'custom_imports', 'refine_coarse_masks'}
    if name.startswith('samrefiner_pp/'):
        return RUNTIME_KEYS | SCHEDULE_KEYS | {'model', 'data_root', 'train_dataloader',
                                               'val_dataloader', 'val_evaluator'}
    if name in SELF_TRAINING_CONFIGS:
        upstream, _, kind = SELF_TRAINING_CONFIGS[name]
        added = ({'custom_hooks', 'unlabeled_pipeline'} if kind == 'pseudo-label' else
                 {'pseudo_labeled_dataset'})
        return set(get_config(upstream).keys()) | {'custom_imports'} | added
    if name == TOY_TEACHER:
        return set(get_config(MASK_RCNN).keys()) | {'metainfo', 'randomness'}
    if name in (TOY_PSEUDO, TOY_STUDENT):
        added = ({'custom_hooks', 'unlabeled_pipeline'} if name == TOY_PSEUDO else
                 {'pseudo_labeled_dataset'})
        return expected_keys(TOY_TEACHER) | {'custom_imports'} | added
    if name in MM_CONFIGS:
        upstream, kind = MM_CONFIGS[name]
        added = {'custom_hooks'} if kind == 'hook' else set()  # the pipeline is mmdet's key
        return set(get_config(upstream).keys()) | {'custom_imports'} | added
    if name in SEMI_CONFIGS:
        return set(get_config(SEMI_CONFIGS[name]).keys()) | {'custom_imports'}
    raise AssertionError(f'configs/{name} is new: say which top-level keys it may hold')


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_every_config_loads_and_holds_only_its_own_top_level_keys(name):
    cfg = Config.fromfile(osp.join(ROOT, name))
    assert set(cfg.keys()) == expected_keys(name)
    if 'custom_imports' in cfg:
        pseudo_label = SELF_TRAINING_CONFIGS.get(name, (None, None, None))[2] == 'pseudo-label'
        assert cfg.custom_imports == (CHECKPOINT_IMPORTS if pseudo_label else CUSTOM_IMPORTS)


def unscoped(value):
    """``value`` without the ``_scope_`` keys mmengine adds to what comes from an
    ``mmdet::``/``mmseg::`` base."""
    if isinstance(value, dict):
        return {k: unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(unscoped(v) for v in value)
    return value


def base_files(path: str) -> list:
    """The ``_base_`` entries of a config file, as written."""
    for node in ast.parse(open(path, encoding='utf-8').read()).body:
        if (isinstance(node, ast.Assign)
                and any(getattr(t, 'id', None) == '_base_' for t in node.targets)):
            value = ast.literal_eval(node.value)
            return [value] if isinstance(value, str) else list(value)
    return []


@pytest.mark.parametrize('name', [n for n in ALL_CONFIGS if n.startswith('_base_/')])
def test_base_pieces_inherit_only_base_pieces(name):
    for base in base_files(osp.join(ROOT, name)):
        target = osp.relpath(osp.normpath(osp.join(osp.dirname(osp.join(ROOT, name)), base)),
                             ROOT)
        assert target.replace(osp.sep, '/').startswith('_base_/'), (name, base)


def test_the_hook_and_the_transform_are_what_they_were():
    (hook, ) = Config.fromfile(osp.join(ROOT, '_base_/hooks/samrefiner_hook.py')).custom_hooks
    assert hook.to_dict() == HOOK
    transform = Config.fromfile(
        osp.join(ROOT, '_base_/transforms/refine_coarse_masks.py')).refine_coarse_masks
    assert transform.to_dict() == TRANSFORM
    leaf = Config.fromfile(osp.join(CONFIG_DIR, 'samrefiner_sam_vit-h.py')).refiner
    assert leaf.to_dict() == REFINER_VIT_H  # one refiner for the tools, the hook, the transform


@pytest.mark.parametrize('name', sorted(MM_CONFIGS))
def test_ready_mm_configs_inherit_real_configs_and_switch_samrefiner_in(name):
    cfg = Config.fromfile(osp.join(ROOT, name))
    upstream = get_config(MM_CONFIGS[name][0])
    assert cfg.custom_imports == CUSTOM_IMPORTS
    assert 'refiner' not in cfg and 'sam' not in cfg  # the refiner lives in the hook/pipeline
    if MM_CONFIGS[name][1] == 'hook':
        (hook, ) = cfg.custom_hooks
        if 'mmseg' in name:
            assert cfg.default_scope == 'mmseg'
            # The mmseg hook also carries the piece's options the old config left out, at
            # the hook's defaults: the same hook.
            defaults = inspect.signature(SAMRefinerHook).parameters
            added = {key: defaults[key].default for key in ('score_thr', 'keep_coarse',
                                                             'out_dir')}
            assert hook.to_dict() == dict(MMSEG_HOOK, **added)
        else:
            assert cfg.default_scope == 'mmdet'
            assert hook.to_dict() == HOOK
        assert 'test_evaluator' in cfg  # the real mmdet/mmseg config underneath
        # the visualizer draws coarse | refined; only its type changed
        kind = 'seg' if 'mmseg' in name else 'det'
        assert cfg.visualizer.type == f'mmsamrefiner.SAMRefiner{kind.title()}LocalVisualizer'
        assert unscoped(dict(cfg.visualizer, type=None)) == unscoped(
            dict(upstream.visualizer, type=None))
    else:
        pipeline = cfg.train_dataloader.dataset.pipeline
        types = [t.type for t in pipeline]
        # right after LoadAnnotations, before any geometric transform
        assert types[:3] == ['LoadImageFromFile', 'LoadAnnotations',
                             'mmsamrefiner.RefineCoarseMasks']
        assert pipeline[2].to_dict() == TRANSFORM
        assert cfg.train_pipeline == pipeline and 'refine_coarse_masks' not in cfg
    for key in set(upstream.keys()) - {'custom_hooks', 'train_pipeline', 'train_dataloader',
                                       'visualizer'}:
        # nothing else of the real config changed
        assert unscoped(cfg[key]) == unscoped(upstream[key]), key
    if MM_CONFIGS[name][1] == 'transform':
        assert unscoped(cfg.visualizer) == unscoped(upstream.visualizer)


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(CONFIG_DIR, '*.py'))))
def test_refiner_configs(path):
    cfg = Config.fromfile(path).refiner
    assert cfg.type == 'SAMRefiner'
    arch, family = cfg.sam.arch, cfg.sam.get('family', 'sam')
    name = osp.basename(path)
    model = dict(sam='sam', hq='hq-sam', sam2='sam2')[family]
    assert name.startswith(f'samrefiner_{model}_{arch.replace("_", "-")}')
    assert cfg.sam.checkpoint == CHECKPOINT_URLS[family][arch]  # one switch: the sam dict
    sam = dict(type='SAM', arch=arch, checkpoint=cfg.sam.checkpoint)
    if family != 'sam':
        sam['family'] = family
    if arch == 'toy':
        assert cfg.sam.to_dict() == SAM_TOY
    expected = dict(REFINER_SETTINGS, sam=sam)
    if 'cebox' in name:
        expected['elastic_margin'] = 0.1
    assert cfg.to_dict() == expected


ADAPT_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'samrefiner_pp', '*.py')))


@pytest.mark.parametrize('path', ADAPT_CONFIGS)
def test_adapter_configs_carry_the_authors_settings(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmsamrefiner' and cfg.randomness.seed == 0
    assert cfg.model.type == 'IoUAdapterModel'
    assert (cfg.model.rank, cfg.model.ranking_margin) == (4, 0.02)
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
    assert f'_sam_{arch.replace("_", "-")}_' in osp.basename(path)
    assert cfg.model.refiner.sam.checkpoint == SAM_CHECKPOINT_URLS[arch]
    sam = SAM_TOY if arch == 'toy' else SAM_VIT_H
    assert cfg.model.to_dict() == dict(ADAPTER_MODEL, refiner=dict(ADAPTER_REFINER, sam=sam))


@pytest.mark.parametrize('path', ADAPT_CONFIGS)
def test_adapter_configs_drop_the_last_partial_batch_in_training_only(path):
    from mmengine.runner import Runner
    cfg = Config.fromfile(path)
    sizes = {}
    for name in ('train_dataloader', 'val_dataloader'):
        loader_cfg = dict(cfg[name], dataset=list(range(12)), num_workers=0,
                          persistent_workers=False)
        sizes[name] = [len(batch) for batch in Runner.build_dataloader(loader_cfg, seed=0)]
    assert sizes == dict(train_dataloader=[5, 5], val_dataloader=[5, 5, 2])


@pytest.mark.parametrize('name', sorted(SELF_TRAINING_CONFIGS))
def test_self_training_configs_change_only_their_data_and_hook(name):
    upstream_name, dataset_type, kind = SELF_TRAINING_CONFIGS[name]
    cfg, upstream = Config.fromfile(osp.join(ROOT, name)), get_config(upstream_name)
    changed = {'custom_imports', 'custom_hooks', 'unlabeled_pipeline', 'pseudo_labeled_dataset'}
    if kind == 'pseudo-label':
        (hook, ) = cfg.custom_hooks
        piece = dict(MMSEG_HOOK if 'mmseg' in upstream_name else HOOK, score_thr=0.0,
                     keep_coarse=False, out_dir='pseudo_labels', modes=('test', ))
        if 'mmseg' in upstream_name:
            assert hook.to_dict() == piece
        else:
            assert hook.to_dict() == dict(piece, score_thr=0.5, export_score_thr=0.5)
        dataset = cfg.test_dataloader.dataset
        assert dataset.type == dataset_type and dataset.test_mode
        assert len(dataset.metainfo.classes) == (80 if 'mmdet' in upstream_name else 21)
        assert cfg.test_evaluator == []  # no ground truth: the export is the product
        changed |= {'test_dataloader', 'test_evaluator'}
    else:
        labeled, pseudo = cfg.train_dataloader.dataset.datasets
        assert cfg.train_dataloader.dataset.type == 'ConcatDataset'
        assert unscoped(labeled) == unscoped(upstream.train_dataloader.dataset)
        assert pseudo.type == dataset_type
        assert unscoped(pseudo.pipeline) == unscoped(upstream.train_pipeline)
        # by default the student reads what the pseudo-labelling config exports into
        # tools/test.py's default work dir, work_dirs/<config name>/
        source = MMDET_PSEUDO if 'mmdet' in upstream_name else MMSEG_PSEUDO
        export = osp.join('work_dirs', osp.splitext(osp.basename(source))[0], 'pseudo_labels')
        if 'mmdet' in upstream_name:
            assert pseudo.ann_file == osp.join(export, 'instances.json')
            assert pseudo.data_prefix.img == Config.fromfile(
                osp.join(ROOT, source)).test_dataloader.dataset.data_root
        else:
            assert pseudo.data_prefix.seg_map_path == export
            assert pseudo.data_prefix.img_path == Config.fromfile(
                osp.join(ROOT, source)).test_dataloader.dataset.data_prefix.img_path
            from mmseg.datasets import PascalVOCDataset
            assert tuple(pseudo.metainfo.classes) == PascalVOCDataset.METAINFO['classes']
        changed |= {'train_dataloader'}
    for key in set(upstream.keys()) - changed:
        assert unscoped(cfg[key]) == unscoped(upstream[key]), key


def test_the_toy_teacher_is_mmdets_mask_rcnn_on_its_own_data():
    cfg, upstream = Config.fromfile(osp.join(ROOT, TOY_TEACHER)), get_config(MASK_RCNN)
    classes = tuple(cfg.metainfo.classes)
    assert cfg.model.backbone.depth == 18 and cfg.model.backbone.init_cfg is None
    roi_head = cfg.model.roi_head
    assert roi_head.bbox_head.num_classes == roi_head.mask_head.num_classes == len(classes)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.type == 'CocoDataset' and tuple(dataset.metainfo.classes) == classes
        assert dataset.data_root == cfg.data_root and cfg[loader].num_workers == 0
    for split in ('val', 'test'):  # the evaluator reads the set the loader reads
        dataset = cfg[f'{split}_dataloader'].dataset
        assert cfg[f'{split}_evaluator'].ann_file == dataset.data_root + dataset.ann_file
    assert cfg.train_cfg.max_epochs == 1 and cfg.randomness.seed == 0
    for key in set(upstream.keys()) - {'data_root', 'model', 'train_pipeline', 'test_pipeline',
                                       'train_dataloader', 'val_dataloader', 'test_dataloader',
                                       'val_evaluator', 'test_evaluator', 'train_cfg',
                                       'optim_wrapper', 'param_scheduler', 'default_hooks'}:
        assert unscoped(cfg[key]) == unscoped(upstream[key]), key


def test_the_toy_pseudo_label_and_student_configs_are_the_teachers_with_a_round_added():
    teacher = Config.fromfile(osp.join(ROOT, TOY_TEACHER))
    pseudo = Config.fromfile(osp.join(ROOT, TOY_PSEUDO))
    (hook, ) = pseudo.custom_hooks
    assert hook.to_dict() == dict(HOOK, refiner=dict(REFINER_SETTINGS, sam=SAM_TOY),
                                  modes=('test', ), score_thr=0.0, export_score_thr=None,
                                  out_dir='pseudo_labels')
    images = pseudo.test_dataloader.dataset
    assert images.type == 'ImageFolderDetDataset' and images.test_mode
    assert images.metainfo == teacher.metainfo and pseudo.test_evaluator == []
    assert images.pipeline == [t for t in teacher.test_pipeline if t.type != 'LoadAnnotations']
    assert 'sam' not in pseudo
    student = Config.fromfile(osp.join(ROOT, TOY_STUDENT))
    labeled, pseudo_labeled = student.train_dataloader.dataset.datasets
    assert student.train_dataloader.dataset.type == 'ConcatDataset'
    assert labeled == teacher.train_dataloader.dataset
    export = osp.join('work_dirs', osp.splitext(osp.basename(TOY_PSEUDO))[0], 'pseudo_labels')
    assert pseudo_labeled.type == 'CocoDataset'
    assert pseudo_labeled.ann_file == osp.join(export, 'instances.json')
    assert pseudo_labeled.data_prefix.img == images.data_root
    assert pseudo_labeled.metainfo == teacher.metainfo
    assert pseudo_labeled.pipeline == teacher.train_pipeline
    for cfg, changed in ((pseudo, {'test_dataloader', 'test_evaluator'}),
                         (student, {'train_dataloader'})):
        for key in set(teacher.keys()) - changed:
            assert cfg[key] == teacher[key], key
