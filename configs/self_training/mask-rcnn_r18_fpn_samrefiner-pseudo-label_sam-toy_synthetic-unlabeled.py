# Self-training on generated data, step 2 (docs/self_training.md,
# "A toy round on generated data"): the teacher of
#   configs/self_training/mask-rcnn_r18_fpn_1xb2-1e_synthetic.py
# predicts on a folder of generated unlabeled images, SAMRefiner with the toy
# SAM shipped in the package refines the predicted masks, and SAMRefinerHook
# exports them as COCO pseudo-labels (RLE masks):
#   <work dir>/pseudo_labels/instances.json
# Run with mmdet's own tools/test.py and the teacher's checkpoint; nothing is
# scored: the export is the product. Laid out as the COCO pseudo-labelling
# config of this folder, on a teacher config of its own (the first base): for
# your data, point that base at your teacher config (docs/self_training.md,
# "Your own data").
_base_ = [
    './mask-rcnn_r18_fpn_1xb2-1e_synthetic.py',
    '../_base_/hooks/samrefiner_hook.py',
    '../_base_/models/sam/sam_toy.py',
]

# the teacher's test pipeline without its annotations
unlabeled_pipeline = [t for t in _base_.test_pipeline if t['type'] != 'LoadAnnotations']
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageFolderDetDataset',  # every image directly in data_root, sorted by name
        data_root=_base_.data_root + 'unlabeled/gt/images/',  # (their labels are not read)
        metainfo=_base_.metainfo,  # the classes the teacher predicts: the exported categories
        test_mode=True,
        pipeline=unlabeled_pipeline))
test_evaluator = []  # no ground truth, no metric: the test loop only predicts and exports

custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        refiner=dict(_base_.custom_hooks[0].refiner, sam=_base_.sam),  # the toy SAM
        modes=('test', ),
        # A teacher trained one epoch from random init scores its instances
        # about 0.1: refine and export all it keeps (its test_cfg: scored 0.05
        # or more, 10 an image). With a trained teacher, 0.5 for both, as the
        # COCO config.
        score_thr=0.0,
        export_score_thr=None,
        out_dir='pseudo_labels')  # inside the work dir
]
del _base_.sam  # the SAM lives in the hook only
