# Mask R-CNN trained on coarse COCO-style masks that SAMRefiner (SAM ViT-H)
# refines on the fly, right after loading, before any geometric augmentation.
# Refined masks are cached by content, so epochs after the first read files.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/transforms/refine_coarse_masks.py',
]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    _base_.refine_coarse_masks,
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
del _base_.refine_coarse_masks  # it lives in the pipeline only
