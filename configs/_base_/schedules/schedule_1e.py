# The authors' SAMRefiner++ schedule: SGD lr 1e-2, momentum 0.9, weight decay
# 5e-4, effective batch 5 (their batch 1 x 5-step accumulation = our batch 5:
# the loss is a mean over masks and SAM has no batch statistics; they drop the
# last partial group, the configs' train_dataloader drop_last=True), MultiStepLR
# x0.1 at optimizer steps 60 and 100, one epoch.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-2, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[60, 100], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
val_cfg = dict(type='ValLoop')
# batch 5 on one GPU; with more GPUs keep 5 in total (batch_size per GPU) or
# scale the lr (mmengine's auto_scale_lr).
auto_scale_lr = dict(enable=False, base_batch_size=5)
