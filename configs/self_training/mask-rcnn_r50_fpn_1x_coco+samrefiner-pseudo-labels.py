# Self-training, step 3 of a round (docs/self_training.md): a Mask R-CNN (the
# student) trained on the labeled COCO train2017 set and the refined
# pseudo-labels that
#   configs/self_training/mask-rcnn_r50_fpn_samrefiner-pseudo-label_coco-unlabeled2017.py
# exported for the unlabeled2017 images (its default work dir below). Pseudo-labels
# elsewhere (e.g. the next round's):
#   --cfg-options train_dataloader.dataset.datasets.1.ann_file=<dir>/instances.json
# Run with mmdet's own tools/train.py; validation and the schedule are mmdet's.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)

pseudo_labeled_dataset = dict(
    type='CocoDataset',  # the export is a COCO instance file (RLE masks)
    ann_file='work_dirs/mask-rcnn_r50_fpn_samrefiner-pseudo-label_coco-unlabeled2017/'
    'pseudo_labels/instances.json',
    data_prefix=dict(img='data/coco/unlabeled2017/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),  # images without pseudo-labels
    pipeline=_base_.train_pipeline,
    backend_args=_base_.backend_args)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[_base_.train_dataloader.dataset, pseudo_labeled_dataset]))
