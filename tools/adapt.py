#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefiner++: train the IoU adapter of SAM with mmengine's Runner.

Arguments as mmdet's ``tools/train.py``::

    python tools/adapt.py configs/samrefiner_pp/samrefiner-pp_sam_vit-h_1xb5-1e_coco-coarse.py
    python tools/adapt.py CONFIG --work-dir work_dirs/adapt --resume
    bash tools/dist_adapt.sh CONFIG 8 [--cfg-options ...]

The run writes mmengine checkpoints (adapter and optimizer state only, for
``--resume``) and ``<work_dir>/iou_adapter.pth``, which the refiner loads:
``dict(type='SAMRefiner', sam=..., iou_adapter=dict(checkpoint=PATH))``.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmsamrefiner import runner_checkpoints
from mmsamrefiner.apis.distributed import init_cpu_processes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='SAMRefiner++: the IoU adapter of SAM')
    parser.add_argument('config', help='adapter config (configs/samrefiner_pp/*.py)')
    parser.add_argument('--work-dir', help='where logs, checkpoints and the adapter go')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CHECKPOINT, or without a value from the '
                        'latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. optim_wrapper.optimizer.lr=0.02')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.launcher != 'none' and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    runner_checkpoints.install(force_import=True)
    cfg = build_config(args)
    if not torch.cuda.is_available():  # on GPUs the Runner joins the processes
        init_cpu_processes(args.launcher)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
