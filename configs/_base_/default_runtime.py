# Runtime of SAMRefiner++ (IoU adapter) runs: mmengine Runner in the
# 'mmsamrefiner' scope, seed 0 as the authors.
default_scope = 'mmsamrefiner'
custom_imports = dict(imports=['mmsamrefiner'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # tools/adapt.py switches to gloo without CUDA
randomness = dict(seed=0)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),  # adapter + optimizer state
    sampler_seed=dict(type='DistSamplerSeedHook'))
# The adapter alone, for SAMRefiner(iou_adapter=dict(checkpoint=...)).
custom_hooks = [dict(type='SaveIoUAdapterHook', filename='iou_adapter.pth')]

log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
load_from = None
resume = False
