# Self-training, step 2 of a round (docs/self_training.md): a trained DeepLabV3+
# (the teacher, Pascal VOC classes) predicts on a folder of unlabeled images,
# SAMRefiner (SAM ViT-H) refines the label maps through split-then-merge, and
# SAMRefinerHook exports one PNG label map per image:
#   <work dir>/pseudo_labels/<image stem>.png
# Run with mmseg's own tools/test.py and the teacher's checkpoint; nothing is
# scored (no ground truth): the export is the product. Another folder:
#   --cfg-options test_dataloader.dataset.data_prefix.img_path=data/my_images/
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py',
    '../_base_/hooks/samrefiner_hook.py',
]
custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)

unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageFolderSegDataset',  # every image directly in the folder, sorted by name
        data_prefix=dict(img_path='data/VOCdevkit/unlabeled/'),
        metainfo=dict(classes=(  # the classes the teacher predicts (Pascal VOC's)
            'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
            'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
            'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')),
        test_mode=True,
        pipeline=unlabeled_pipeline))
test_evaluator = []  # no ground truth, no metric: the test loop only predicts and exports

custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        modes=('test', ),
        background=0,  # VOC's background: pixels no refined instance claims
        ignore_index=255,
        out_dir='pseudo_labels')  # inside the work dir
]
