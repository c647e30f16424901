# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Real mmengine Runner test loops on tiny models and generated data: a Mask
R-CNN (ResNet-18, random init) on a COCO-format collection and an FCN on a
label-map collection, with the hook lines the README gives.  The evaluators
of :func:`mask_rcnn_cfg` and :func:`fcn_cfg` include ``RecordPredictions``,
which :func:`run_test` registers for its run."""
import copy
import uuid
from typing import Optional

from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.runner import Runner

from mmsamrefiner import SAMRefinerHook
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

from .mm_data import make_coco_dataset, make_seg_dataset
from .recording_metric import recording_predictions


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
    """Run ``cfg``'s test loop; ``(runner, the SAMRefinerHook, metrics, the
    data samples the evaluator received)``."""
    with recording_predictions() as received:
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    hook = next(h for h in runner.hooks if isinstance(h, SAMRefinerHook))
    return runner, hook, metrics, list(received)


def run_scripted_test(model, work_dir, dataset: dict, evaluators: list, custom_hooks: list,
                      scope: str, visualization: Optional[dict] = None):
    """A real Runner test loop (``scope``: ``'mmdet'`` or ``'mmseg'``) of a
    model whose predictions the test chose (:mod:`tests.scripted_models`) on
    ``dataset`` (batches of 2), with ``evaluators`` and ``RecordPredictions``;
    ``visualization``: ``dict(visualizer=..., hook=...)`` (the visualizer's
    config and the visualization hook's, drawing into the run's folder).
    Returns what :func:`run_test` returns."""
    default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
    visualizer = None
    if visualization is not None:
        visualizer = visualization['visualizer']
        default_hooks['visualization'] = visualization['hook']
    with recording_predictions() as received:
        runner = Runner(
            model=model, work_dir=str(work_dir), default_scope=scope,
            # its own name: runners of one second would share a default scope
            experiment_name=f'scripted-{scope}-{uuid.uuid4().hex[:8]}',
            test_dataloader=dict(batch_size=2, num_workers=0, persistent_workers=False,
                                 sampler=dict(type='DefaultSampler', shuffle=False),
                                 dataset=dataset),
            test_cfg=dict(type='TestLoop'),
            test_evaluator=list(evaluators) + [dict(type='RecordPredictions')],
            custom_hooks=copy.deepcopy(custom_hooks), default_hooks=default_hooks,
            visualizer=visualizer, randomness=dict(seed=0))
        metrics = runner.test()
    hook = next(h for h in runner.hooks if isinstance(h, SAMRefinerHook))
    return runner, hook, metrics, list(received)
