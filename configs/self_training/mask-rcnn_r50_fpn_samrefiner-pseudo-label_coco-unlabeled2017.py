# Self-training, step 2 of a round (docs/self_training.md): a trained Mask R-CNN
# (the teacher) predicts on a folder of unlabeled images (COCO's unlabeled2017),
# SAMRefiner (SAM ViT-H) refines the predicted masks, and SAMRefinerHook exports
# them as COCO pseudo-labels (RLE masks):
#   <work dir>/pseudo_labels/instances.json
# Instances scored under 0.5 are neither refined nor exported. Run with mmdet's
# own tools/test.py and the teacher's checkpoint; nothing is scored (no ground
# truth): the export is the product. Another folder:
#   --cfg-options test_dataloader.dataset.data_root=data/my_images/
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/hooks/samrefiner_hook.py',
]
custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)

unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageFolderDetDataset',  # every image directly in data_root, sorted by name
        data_root='data/coco/unlabeled2017/',
        # the classes the teacher predicts (COCO's 80): the exported categories
        metainfo=dict(classes=(
            'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
            'boat', 'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench',
            'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
            'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
            'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
            'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife',
            'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
            'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
            'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
            'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
            'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush')),
        test_mode=True,
        pipeline=unlabeled_pipeline))
test_evaluator = []  # no ground truth, no metric: the test loop only predicts and exports

custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        modes=('test', ),
        score_thr=0.5,  # instances scored under it are not refined ...
        export_score_thr=0.5,  # ... nor exported as pseudo-labels
        out_dir='pseudo_labels')  # inside the work dir
]
