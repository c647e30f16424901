# SAMRefiner++ on SAM ViT-H with the authors' settings (their script: DAVIS-585,
# one round of refinement in evaluation), for coarse masks in a COCO-style json.
# Data layout (ground truth optional, only for the validation metrics):
#   data/coarse/images/*.jpg   data/coarse/coarse.json   data/coarse/gt.json
_base_ = [
    '../_base_/models/samrefiner-pp.py', '../_base_/models/sam/sam_vit-h.py',
    '../_base_/schedules/schedule_1e.py', '../_base_/default_runtime.py'
]

model = dict(refiner=dict(sam=_base_.sam, iters=1))
del _base_.sam  # the SAM lives in the refiner only

data_root = 'data/coarse/'
_dataset = dict(
    type='CocoCoarseMaskDataset', data_root=data_root, ann_file='coarse.json', img_dir='images')
# The authors accumulate 5 samples of batch 1 per optimizer step and drop the
# last partial group: batch 5 with drop_last.
train_dataloader = dict(
    batch_size=5,
    drop_last=True,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=_dataset)
val_dataloader = dict(
    train_dataloader,
    drop_last=False,  # every mask is evaluated
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_dataset, gt_ann_file='gt.json'))  # ground truth: validation metrics only
val_evaluator = dict(type='IoURankingMetric')
del _dataset  # a helper, not a setting
