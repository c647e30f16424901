# SAMRefiner++ on the toy SAM shipped in the package, on a generated collection:
#   python tools/make_synthetic_collection.py data/synthetic --images 20
#   python tools/adapt.py configs/samrefiner_pp/samrefiner-pp_sam_toy_1xb5-1e_synthetic.py
_base_ = [
    './samrefiner-pp_sam_vit-h_1xb5-1e_coco-coarse.py', '../_base_/models/sam/sam_toy.py'
]

model = dict(refiner=dict(sam=dict(_base_.sam, _delete_=True)))  # in place of ViT-H
del _base_.sam  # the SAM lives in the refiner only

data_root = 'data/synthetic/'
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='coarse/instances.json', img_dir='coarse/images'))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='coarse/instances.json',
        img_dir='coarse/images',
        gt_ann_file='gt/instances.json'))
default_hooks = dict(logger=dict(interval=1))
