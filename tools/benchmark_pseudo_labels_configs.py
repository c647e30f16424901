# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The mmdet and mmseg configs ``tools/benchmark_pseudo_labels.py`` trains:
a small Mask R-CNN and a small FCN, random init (nothing is downloaded).

Each function returns a whole config as a plain dict (``Config(dict)``); the
benchmark writes it as ``config.py`` into the training's folder, so a run can
be repeated with mmdet's or mmseg's ``tools/train.py``.
"""
from typing import Sequence

#: ImageNet mean/std in RGB order; the images are read as BGR
#: (``LoadImageFromFile``) and flipped to RGB by the data preprocessors.
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _schedule(iters: int, lr: float, warmup: int) -> dict:
    """AdamW, linear warm-up over ``warmup`` iterations, then cosine decay to
    1% of ``lr`` at ``iters``; no validation during training."""
    warmup = max(1, min(warmup, iters // 4))
    return dict(
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05),
                           clip_grad=dict(max_norm=10.0)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup, end=max(iters, warmup + 1),
                 eta_min=lr * 0.01),
        ],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1),
        val_cfg=None, val_dataloader=None, val_evaluator=None,
        test_cfg=dict(type='TestLoop'))


def _runtime(work_dir: str, seed: int, iters: int, log_interval: int, visualizer: str) -> dict:
    return dict(
        work_dir=work_dir,
        randomness=dict(seed=seed, deterministic=False),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'),
                     mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=log_interval),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters,
                            max_keep_ckpts=1),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        log_processor=dict(type='LogProcessor', window_size=log_interval, by_epoch=False),
        visualizer=dict(type=visualizer, vis_backends=[dict(type='LocalVisBackend')]),
        log_level='INFO', load_from=None, resume=False)


def _loader(dataset: dict, batch_size: int, shuffle: bool) -> dict:
    sampler = (dict(type='InfiniteSampler', shuffle=True) if shuffle
               else dict(type='DefaultSampler', shuffle=False))
    return dict(batch_size=batch_size, num_workers=0, persistent_workers=False,
                sampler=sampler, dataset=dataset)


def mask_rcnn_config(train_ann: str, train_img_dir: str, test_ann: str, test_img_dir: str,
                     classes: Sequence[str], image_size: Sequence[int], work_dir: str,
                     iters: int, seed: int = 0, batch_size: int = 4, lr: float = 1e-3,
                     log_interval: int = 50) -> dict:
    """Mask R-CNN: ResNet-18 of 16 base channels (trained BN), FPN of 64
    channels, RPN and RoI heads of 64 channels (RoIAlign with 2x2 samples a
    bin: mmcv's adaptive sampling is slow on CPUs), trained ``iters`` iterations on
    the COCO json ``train_ann`` and tested (mask AP, ``CocoMetric`` ``segm``) on
    ``test_ann``.  ``image_size``: (H, W) of the images, kept as they are
    (no resize beyond the identity; random horizontal flips in training)."""
    height, width = image_size
    channels = 64
    load = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    keep_size = dict(type='Resize', scale=(width, height), keep_ratio=True)
    train_pipeline = load + [keep_size, dict(type='RandomFlip', prob=0.5),
                             dict(type='PackDetInputs')]
    test_pipeline = [dict(type='LoadImageFromFile'), keep_size,
                     dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                     dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                           'img_shape', 'scale_factor'))]
    metainfo = dict(classes=tuple(classes))

    def dataset(ann, img_dir, pipeline, test_mode):
        return dict(type='CocoDataset', data_root='', ann_file=ann,
                    data_prefix=dict(img=img_dir + '/'), metainfo=metainfo,
                    filter_cfg=None if test_mode else dict(filter_empty_gt=True, min_size=1),
                    test_mode=test_mode, pipeline=pipeline)

    norm = dict(type='BN', requires_grad=True)
    model = dict(
        type='MaskRCNN',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                               pad_mask=True, pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                      out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_cfg=norm,
                      norm_eval=False, style='pytorch', init_cfg=None),
        neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=channels,
                  num_outs=5),
        rpn_head=dict(
            type='RPNHead', in_channels=channels, feat_channels=channels,
            anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                  strides=[4, 8, 16, 32, 64]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[1.0] * 4),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                    roi_layer=dict(type='RoIAlign', output_size=7,
                                                   sampling_ratio=2),
                                    out_channels=channels, featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(
                type='Shared2FCBBoxHead', in_channels=channels, fc_out_channels=256,
                roi_feat_size=7, num_classes=len(classes),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
            mask_roi_extractor=dict(type='SingleRoIExtractor',
                                    roi_layer=dict(type='RoIAlign', output_size=14,
                                                   sampling_ratio=2),
                                    out_channels=channels, featmap_strides=[4, 8, 16, 32]),
            mask_head=dict(type='FCNMaskHead', num_convs=4, in_channels=channels,
                           conv_out_channels=channels, num_classes=len(classes),
                           loss_mask=dict(type='CrossEntropyLoss', use_mask=True,
                                          loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                                   min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
                     sampler=dict(type='RandomSampler', num=128, pos_fraction=0.5,
                                  neg_pos_ub=-1, add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=1000, max_per_img=200,
                              nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
            rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                    min_pos_iou=0.5, match_low_quality=True,
                                    ignore_iof_thr=-1),
                      sampler=dict(type='RandomSampler', num=128, pos_fraction=0.25,
                                   neg_pos_ub=-1, add_gt_as_proposals=True),
                      mask_size=28, pos_weight=-1, debug=False)),
        test_cfg=dict(
            rpn=dict(nms_pre=500, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=20,
                      mask_thr_binary=0.5)))
    return dict(
        default_scope='mmdet',
        model=model,
        train_dataloader=_loader(dataset(train_ann, train_img_dir, train_pipeline, False),
                                 batch_size, shuffle=True),
        test_dataloader=_loader(dataset(test_ann, test_img_dir, test_pipeline, True),
                                batch_size, shuffle=False),
        test_evaluator=dict(type='CocoMetric', ann_file=test_ann, metric='segm',
                            format_only=False),
        **_schedule(iters, lr, warmup=100),
        **_runtime(work_dir, seed, iters, log_interval, 'DetLocalVisualizer'))


def fcn_config(train_img_dir: str, train_ann_dir: str, test_img_dir: str, test_ann_dir: str,
               classes: Sequence[str], work_dir: str,
               iters: int, seed: int = 0, batch_size: int = 4, lr: float = 1e-3,
               log_interval: int = 50) -> dict:
    """FCN: ResNetV1c-18 of 16 base channels, output stride 8 (dilated last two
    stages), an FCN head of 64 channels, trained ``iters`` iterations on the
    PNG label maps in ``train_ann_dir`` (images of the same names in
    ``train_img_dir``) and tested (``IoUMetric`` mIoU) on those in
    ``test_ann_dir``; ``classes``: class 0 first (the background)."""
    norm = dict(type='BN', requires_grad=True)
    model = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                               pad_val=0, seg_pad_val=255, size_divisor=8),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=16,
                      num_stages=4, out_indices=(3, ), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=norm, norm_eval=False,
                      contract_dilation=True, init_cfg=None),
        decode_head=dict(type='FCNHead', in_channels=128, in_index=0, channels=64,
                         num_convs=2, concat_input=True, dropout_ratio=0.1,
                         num_classes=len(classes), norm_cfg=norm, align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                          loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    metainfo = dict(classes=tuple(classes))

    def dataset(img_dir, ann_dir, pipeline):
        return dict(type='BaseSegDataset', data_root='',
                    data_prefix=dict(img_path=img_dir, seg_map_path=ann_dir),
                    img_suffix='.png', seg_map_suffix='.png', metainfo=metainfo,
                    reduce_zero_label=False, pipeline=pipeline)

    train_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                      dict(type='RandomFlip', prob=0.5), dict(type='PackSegInputs')]
    test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                     dict(type='PackSegInputs')]
    return dict(
        default_scope='mmseg',
        model=model,
        train_dataloader=_loader(dataset(train_img_dir, train_ann_dir, train_pipeline),
                                 batch_size, shuffle=True),
        test_dataloader=_loader(dataset(test_img_dir, test_ann_dir, test_pipeline),
                                batch_size, shuffle=False),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        **_schedule(iters, lr, warmup=100),
        **_runtime(work_dir, seed, iters, log_interval, 'SegLocalVisualizer'))
