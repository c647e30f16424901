# SAMRefiner++ on SAM ViT-H for semantic coarse masks: PNG label maps (e.g. VOC
# pseudo-labels), split into instances by split-then-merge.
#   data/VOCdevkit/VOC2012/JPEGImages   data/coarse_labels/*.png
#   data/VOCdevkit/VOC2012/SegmentationClass (ground truth, optional)
_base_ = './samrefiner-pp_sam_vit-h_1xb5-1e_coco-coarse.py'

data_root = 'data/'
_dataset = dict(
    _delete_=True,
    type='LabelMapCoarseMaskDataset',
    data_root=data_root,
    label_dir='coarse_labels',
    img_dir='VOCdevkit/VOC2012/JPEGImages',
    background=0,
    ignore_index=255)
train_dataloader = dict(dataset=_dataset)
val_dataloader = dict(
    dataset=dict(_dataset, gt_label_dir='VOCdevkit/VOC2012/SegmentationClass'))
del _dataset  # a helper, not a setting
