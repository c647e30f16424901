# Self-training, step 3 of a round (docs/self_training.md): a DeepLabV3+ (the
# student) trained on the labeled Pascal VOC 2012 aug set and the refined
# pseudo label maps that
#   configs/self_training/deeplabv3plus_r50-d8_samrefiner-pseudo-label_voc-unlabeled-512x512.py
# exported for the unlabeled folder (its default work dir below). Label maps
# elsewhere (e.g. the next round's):
#   --cfg-options train_dataloader.dataset.datasets.1.data_prefix.seg_map_path=<dir>
# Run with mmseg's own tools/train.py; validation and the schedule are mmseg's.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py'

custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)

pseudo_labeled_dataset = dict(
    type='ImageFolderSegDataset',  # image <stem>.<ext> gets label map <stem>.png
    data_prefix=dict(
        img_path='data/VOCdevkit/unlabeled/',
        seg_map_path='work_dirs/deeplabv3plus_r50-d8_samrefiner-pseudo-label_voc-unlabeled-'
        '512x512/pseudo_labels'),
    metainfo=dict(classes=(  # as the labeled set's (ConcatDataset compares them)
        'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
        'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
        'sheep', 'sofa', 'train', 'tvmonitor')),
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[_base_.train_dataloader.dataset, pseudo_labeled_dataset],
        ignore_keys=['palette']))  # the folder's palette is generated, VOC's is not
