# Online semi-supervised instance segmentation on COCO (10% labeled, mmdet's
# semi split): a Mask R-CNN student learns from labeled images and from the
# teacher's pseudo-instances on unlabeled ones, masks included. The teacher's
# masks are refined by SAMRefiner (SAM ViT-H) where they are made and carried
# into the student's augmented view with mmdet's homographies
# (SemiMaskDetector). Train with mmdet's tools/train.py:
#   python tools/train.py \
#       configs/mmdet/semi-mask-detector_mask-rcnn_r50_fpn_180k_semi-0.1-coco_samrefiner.py
# Data as mmdet's semi-supervised COCO configs (tools/misc/split_coco.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
    'mmdet::_base_/datasets/semi_coco_detection.py',
    '../_base_/hooks/samrefiner_hook.py',
]

detector = _base_.model
model = dict(
    _delete_=True,
    type='SemiMaskDetector',
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor),
    semi_train_cfg=dict(
        freeze_teacher=True,
        sup_weight=1.0,
        unsup_weight=1.0,
        cls_pseudo_thr=0.9,  # pseudo-instances the student learns from
        min_pseudo_bbox_wh=(1e-2, 1e-2)),
    semi_test_cfg=dict(predict_on='teacher'))

# the labeled branch loads masks too (mmdet's semi pipeline loads boxes only)
sup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=_base_.scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandAugment', aug_space=_base_.color_space, aug_num=1),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='MultiBranch', branch_field=_base_.branch_field, sup=dict(type='PackDetInputs')),
]
labeled_dataset = dict(
    _base_.labeled_dataset,
    ann_file='semi_anns/instances_train2017.1@10.json',
    pipeline=sup_pipeline)
unlabeled_dataset = dict(
    _base_.unlabeled_dataset,
    ann_file='semi_anns/instances_train2017.1@10-unlabeled.json',
    data_prefix=dict(img='train2017/'))
train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))

val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=180000, val_interval=5000)
val_cfg = dict(type='TeacherStudentValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=180000, by_epoch=False,
         milestones=[120000, 160000], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# SAMRefiner refines the teacher's pseudo-masks only (modes=()): add
# modes=('val', 'test') to evaluate refined predictions too.
custom_hooks = [
    dict(_base_.custom_hooks[0], refine_pseudo_labels=True, modes=()),
    dict(type='MeanTeacherHook'),
]
