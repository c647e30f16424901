# Self-training on generated data, step 1 (docs/self_training.md,
# "A toy round on generated data"): the teacher, mmdet's Mask R-CNN made
# small for a CPU (a ResNet-18 of 16 base channels at random init, nothing
# downloaded; 64 channels after it) and trained one epoch on a generated
# labeled collection, validated on
# another. The lines marked "your data" are what a dataset of your own changes
# in mmdet's config; the pseudo-labelling and student configs of the round
# inherit this one.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

data_root = 'data/toy_round/'  # your data: where it is
# your data: the class names (of the generated shapes), and as many classes in
# the two heads below
metainfo = dict(classes=('ellipse', 'polygon', 'ring', 'c_shape', 'thin_handle'))
model = dict(
    backbone=dict(depth=18, base_channels=16, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=5),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=5)),
    test_cfg=dict(rcnn=dict(max_per_img=10)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(384, 288), keep_ratio=True),  # the images' own size
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(384, 288), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='labeled/gt/instances.json',  # your data: the labeled set
        data_prefix=dict(img='labeled/gt/images/'),
        metainfo=metainfo,
        pipeline=train_pipeline))
# your data: the validation set, in the loader and in the evaluator (or no
# validation: val_cfg = val_dataloader = val_evaluator = None)
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='val/gt/instances.json',
        data_prefix=dict(img='val/gt/images/'),
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val/gt/instances.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=1)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [  # a short warm-up: one epoch is 10 iterations
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)
]
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
