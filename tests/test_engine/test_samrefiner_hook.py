# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefinerHook in real Runner test loops: an mmdet Mask R-CNN and an mmseg
FCN (random init, tiny images) with the config lines from the README."""
import copy
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.hub import get_config
from mmengine.registry import METRICS
from mmengine.runner import Runner

from mmsamrefiner import SAMRefinerHook
from mmsamrefiner.mask_io import decode_rle
from mmsamrefiner.refiner.inputs import load_rgb_image
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

from ..mm_data import HEIGHT, WIDTH, make_coco_dataset, make_seg_dataset
from ..readme_snippets import readme_snippet


@METRICS.register_module(force=True)
class RecordPredictions(BaseMetric):
    """Keeps what the evaluator receives, to check it was refined."""
    received = []

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            RecordPredictions.received.append(copy.deepcopy(sample))
            self.results.append(1)

    def compute_metrics(self, results):
        return dict(recorded=len(results))


def with_tiny_sam(custom_hooks, tiny_sam_cfg, **options):
    hooks = copy.deepcopy(custom_hooks)
    hooks[0]['refiner']['sam'] = tiny_sam_cfg
    hooks[0]['refiner']['iters'] = 2
    hooks[0]['score_thr'] = 0.0  # random-init detectors score low
    hooks[0].update(options)
    return hooks


def mask_rcnn_cfg(root, work_dir, custom_imports, custom_hooks):
    ann_file = make_coco_dataset(root)
    cfg = get_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=3)
    cfg.model.roi_head.bbox_head.num_classes = len(SHAPE_KINDS)
    cfg.model.roi_head.mask_head.num_classes = len(SHAPE_KINDS)
    cfg.test_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='CocoDataset', data_root=str(root), ann_file='instances.json',
            data_prefix=dict(img='images/'), metainfo=dict(classes=SHAPE_KINDS),
            test_mode=True,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(160, 120), keep_ratio=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor')),
            ]))
    cfg.test_evaluator = [dict(type='CocoMetric', ann_file=ann_file, metric='segm'),
                          dict(type='RecordPredictions')]
    cfg.custom_imports = custom_imports
    cfg.custom_hooks = custom_hooks
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.logger.interval = 1
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator', 'train_cfg', 'val_cfg',
                'optim_wrapper', 'param_scheduler'):
        cfg.pop(key, None)
    return cfg


def fcn_cfg(root, work_dir, custom_imports, custom_hooks):
    make_seg_dataset(root)
    norm = dict(type='BN', requires_grad=True)
    return Config(dict(
        default_scope='mmseg',
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                                   seg_pad_val=255),
            backbone=dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(3, ),
                          norm_cfg=norm),
            decode_head=dict(type='FCNHead', in_channels=512, in_index=0, channels=16,
                             num_convs=1, num_classes=len(SHAPE_KINDS) + 1, norm_cfg=norm,
                             loss_decode=dict(type='CrossEntropyLoss')),
            test_cfg=dict(mode='whole')),
        test_dataloader=dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='BaseSegDataset', data_root=str(root),
                data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
                img_suffix='.png', seg_map_suffix='.png',
                metainfo=dict(classes=('background', ) + SHAPE_KINDS),
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='Resize', scale=(160, 120), keep_ratio=True),
                    dict(type='LoadAnnotations'),
                    dict(type='PackSegInputs'),
                ])),
        test_evaluator=[dict(type='IoUMetric', iou_metrics=['mIoU']),
                        dict(type='RecordPredictions')],
        test_cfg=dict(type='TestLoop'),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        custom_imports=custom_imports,
        custom_hooks=custom_hooks,
        work_dir=str(work_dir),
        randomness=dict(seed=0)))


def run_test(cfg):
    RecordPredictions.received = []
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    hook = next(h for h in runner.hooks if isinstance(h, SAMRefinerHook))
    return runner, hook, metrics, list(RecordPredictions.received)


def test_mask_rcnn_test_loop_scores_refined_masks_and_exports(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          out_dir='pseudo_labels')
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    runner, hook, metrics, received = run_test(cfg)

    assert 'coco/segm_mAP' in metrics and metrics['recorded'] == 2
    assert hook.num_refined == 2 and hook.num_resumed == 0
    changed = 0
    for sample in received:
        pred = sample['pred_instances']
        masks, coarse = pred['masks'], pred['coarse_masks']
        assert masks.shape == coarse.shape == (len(pred['scores']), HEIGHT, WIDTH)
        changed += int((masks != coarse).any())
        # exactly what SAMRefiner gives for this image (right image, right frame)
        image = load_rgb_image(sample['img_path'])
        expected = hook.refiner().refine(image, coarse.numpy()).masks
        np.testing.assert_array_equal(masks.numpy(), expected)
    assert changed >= 1

    coco = json.load(open(osp.join(tmp_path, 'work', 'pseudo_labels', 'instances.json')))
    assert sorted(im['id'] for im in coco['images']) == [1, 2]
    by_image = {s['img_id']: s['pred_instances'] for s in received}
    for image_id, pred in by_image.items():
        anns = [a for a in coco['annotations'] if a['image_id'] == image_id]
        exported = decode_rle([a['segmentation'] for a in anns], HEIGHT, WIDTH)
        np.testing.assert_array_equal(exported, pred['masks'].numpy())
        assert [a['category_id'] for a in anns] == (pred['labels'] + 1).tolist()

    # a re-run resumes: nothing refined again, the evaluator gets the same masks
    cfg.work_dir = str(tmp_path / 'work')
    _, hook, _, again = run_test(cfg)
    assert hook.num_refined == 0 and hook.num_resumed == 2
    for first, second in zip(received, again):
        np.testing.assert_array_equal(first['pred_instances']['masks'],
                                      second['pred_instances']['masks'])


def test_score_threshold_leaves_low_scored_instances(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          score_thr=2.0)  # above any score
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    _, _, _, received = run_test(cfg)
    for sample in received:
        pred = sample['pred_instances']
        np.testing.assert_array_equal(pred['masks'], pred['coarse_masks'])


def mask_iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def test_encode_batch_encodes_a_batch_at_once_and_gives_the_same_masks(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          encode_batch=True)
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    cfg.test_dataloader.batch_size = 2
    calls = []
    from mmsamrefiner import SAMRefiner
    encode_images = SAMRefiner.encode_images

    def counting(self, images, channel_order='rgb'):
        calls.append(len(images))
        return encode_images(self, images, channel_order)

    SAMRefiner.encode_images = counting
    try:
        _, hook, _, received = run_test(cfg)
    finally:
        SAMRefiner.encode_images = encode_images
    assert calls == [2] and hook.num_refined == 2  # both images in one encoder call
    for sample in received:
        pred = sample['pred_instances']
        image = load_rgb_image(sample['img_path'])
        expected = hook.refiner().refine(image, pred['coarse_masks'].numpy()).masks
        for got, want in zip(pred['masks'].numpy(), expected):
            assert mask_iou(got, want) >= 0.99


def test_fcn_test_loop_scores_refined_label_maps_and_exports(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmseg-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          out_dir=str(tmp_path / 'labels'))
    cfg = fcn_cfg(tmp_path / 'seg', tmp_path / 'work', lines['custom_imports'], hooks)
    runner, hook, metrics, received = run_test(cfg)

    assert 'mIoU' in metrics and metrics['recorded'] == 2
    changed = 0
    for sample in received:
        refined = sample['pred_sem_seg']['data'][0]
        coarse = sample['coarse_sem_seg']['data'][0]
        assert refined.shape == coarse.shape == (HEIGHT, WIDTH)
        changed += int((refined != coarse).any())
        image = load_rgb_image(sample['img_path'])
        expected = hook.refiner().refine_semantic(image, coarse.numpy(), ignore_index=255,
                                                  background=0)
        np.testing.assert_array_equal(refined.numpy(), expected)
        stem = osp.splitext(osp.basename(sample['img_path']))[0]
        import cv2
        exported = cv2.imread(str(tmp_path / 'labels' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(exported, refined.numpy())
    assert changed >= 1

    _, hook, _, again = run_test(cfg)
    assert hook.num_refined == 0 and hook.num_resumed == 2
    for first, second in zip(received, again):
        np.testing.assert_array_equal(first['pred_sem_seg']['data'],
                                      second['pred_sem_seg']['data'])


def test_hook_restores_the_model_step_after_the_loop(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg)
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    runner, _, _, _ = run_test(cfg)
    assert 'test_step' not in vars(runner.model)


def test_hook_refuses_unknown_modes():
    with pytest.raises(ValueError, match='modes must be among'):
        SAMRefinerHook(refiner=dict(type='SAMRefiner'), modes=('train', ))


@pytest.mark.parametrize('bad', ['0.5', True, [0.5]])
def test_hook_refuses_an_export_score_thr_that_is_not_a_score(bad):
    message = 'export_score_thr is a score .* got ' + re.escape(repr(bad))
    with pytest.raises(ValueError, match=message):
        SAMRefinerHook(refiner=dict(type='SAMRefiner'), export_score_thr=bad)


def test_hook_and_transform_build_by_bare_name_from_mmdet_and_mmseg_scopes(tiny_sam_cfg):
    from mmengine.registry import HOOKS, TRANSFORMS, DefaultScope
    import mmsamrefiner  # noqa: F401 - what custom_imports does
    for scope in ('mmdet', 'mmseg'):
        with DefaultScope.overwrite_default_scope(scope):
            for name in ('SAMRefinerHook', 'mmsamrefiner.SAMRefinerHook'):
                hook = HOOKS.build(dict(type=name, refiner=dict(type='SAMRefiner',
                                                                sam=tiny_sam_cfg)))
                assert isinstance(hook, SAMRefinerHook)
            for name in ('RefineCoarseMasks', 'mmsamrefiner.RefineCoarseMasks'):
                transform = TRANSFORMS.build(dict(type=name, refiner=dict(type='SAMRefiner',
                                                                          sam=tiny_sam_cfg)))
                assert type(transform).__name__ == 'RefineCoarseMasks'


def test_semi_supervised_teacher_pseudo_instances_are_refined(tiny_sam_cfg):
    from types import SimpleNamespace

    from mmdet.models.detectors import SemiBaseDetector
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    from mmsamrefiner.engine.teacher import teacher_input_images, wrap_pseudo_instances
    from mmsamrefiner.synthetic import make_scene

    register_all_modules(init_default_scope=False)
    detector = get_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py').model
    detector.backbone.update(depth=18, init_cfg=None)
    detector.neck.in_channels = [64, 128, 256, 512]
    detector.test_cfg.rcnn.update(score_thr=0.0, max_per_img=3)
    detector.roi_head.bbox_head.num_classes = len(SHAPE_KINDS)
    detector.roi_head.mask_head.num_classes = len(SHAPE_KINDS)
    preprocessor = detector.pop('data_preprocessor')
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = SemiBaseDetector(detector=detector, data_preprocessor=preprocessor,
                                 semi_train_cfg=dict(), semi_test_cfg=dict())
    model.eval()
    image_bgr = make_scene(seed=3, height=HEIGHT, width=WIDTH).image[..., ::-1].copy()
    data = model.data_preprocessor(dict(
        inputs=[torch.from_numpy(image_bgr).permute(2, 0, 1)],
        data_samples=[DetDataSample(metainfo=dict(
            img_shape=(HEIGHT, WIDTH), ori_shape=(HEIGHT, WIDTH), scale_factor=(1.0, 1.0),
            homography_matrix=np.eye(3, dtype=np.float32)))]), False)
    inputs, samples = data['inputs'], data['data_samples']

    images, order = teacher_input_images(model, inputs)
    assert order == 'rgb'  # mmdet's preprocessor converted BGR -> RGB
    np.testing.assert_array_equal(images[0], image_bgr[..., ::-1])  # exactly undone

    raw, _ = model.get_pseudo_instances(inputs, copy.deepcopy(samples))
    hook = SAMRefinerHook(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg, iters=2),
                          refine_pseudo_labels=True)
    with pytest.raises(TypeError, match='SemiBaseDetector'):
        hook.before_train(SimpleNamespace(model=torch.nn.Linear(1, 1)))
    wrap_pseudo_instances(model, hook)
    refined, _ = model.get_pseudo_instances(inputs, copy.deepcopy(samples))
    raw_masks = raw[0].gt_instances.masks
    refined_masks = refined[0].gt_instances.masks
    assert refined_masks.shape == raw_masks.shape == (3, HEIGHT, WIDTH)
    expected = hook.refiner().refine(images[0], raw_masks.numpy()).masks
    np.testing.assert_array_equal(refined_masks.numpy(), expected)
    assert (refined_masks != raw_masks).any()
    assert 'predict' not in vars(model.teacher)  # the teacher is restored
