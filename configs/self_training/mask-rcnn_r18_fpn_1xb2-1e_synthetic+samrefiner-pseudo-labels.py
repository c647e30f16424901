# Self-training on generated data, step 3 (docs/self_training.md,
# "A toy round on generated data"): the student, the teacher's config
#   configs/self_training/mask-rcnn_r18_fpn_1xb2-1e_synthetic.py
# trained on the labeled collection and the refined pseudo-labels that
#   configs/self_training/mask-rcnn_r18_fpn_samrefiner-pseudo-label_sam-toy_synthetic-unlabeled.py
# exported for the unlabeled folder (its default work dir below). Pseudo-labels
# elsewhere:
#   --cfg-options train_dataloader.dataset.datasets.1.ann_file=<dir>/instances.json
# Run with mmdet's own tools/train.py; validation and the schedule are the teacher's.
_base_ = './mask-rcnn_r18_fpn_1xb2-1e_synthetic.py'

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)

pseudo_labeled_dataset = dict(
    type='CocoDataset',  # the export is a COCO instance file (RLE masks)
    ann_file='work_dirs/mask-rcnn_r18_fpn_samrefiner-pseudo-label_sam-toy_synthetic-unlabeled/'
    'pseudo_labels/instances.json',
    data_prefix=dict(img=_base_.data_root + 'unlabeled/gt/images/'),
    metainfo=_base_.metainfo,  # as the labeled set's
    filter_cfg=dict(filter_empty_gt=True, min_size=32),  # images without pseudo-labels
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[_base_.train_dataloader.dataset, pseudo_labeled_dataset]))
