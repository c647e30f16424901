# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/adapt.py (SAMRefiner++) on a generated collection with the toy SAM:
trains, writes the adapter, resumes, and two processes give one's adapter."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmsamrefiner import IoUAdapter, SAMRefiner
from mmsamrefiner.registry import build_in_scope
from mmsamrefiner.synthetic.coco_collection import write_coco_collection

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'samrefiner_pp',
                  'samrefiner-pp_sam_toy_1xb5-1e_synthetic.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """The toy config's layout (coarse/ and gt/), 12 coarse masks: a multiple of
    the batch sizes below, so one and two processes see the same batches."""
    root = tmp_path_factory.mktemp('adapt_collection')
    for name, coarse in (('gt', False), ('coarse', True)):
        write_coco_collection(str(root / name), num_images=4, coarse=coarse, seed=700,
                              height=120, width=160, num_objects=3)
    ann_file = root / 'coarse' / 'instances.json'
    coco = json.loads(ann_file.read_text())
    assert len(coco['annotations']) >= 8
    coco['annotations'] = coco['annotations'][:8]
    ann_file.write_text(json.dumps(coco))
    return str(root)


def adapt(work_dir, data_root, *extra, flags=(), nproc=1, timeout=300):
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
               f'val_dataloader.dataset.data_root={data_root}', *extra]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    if nproc == 1:
        command = [sys.executable, osp.join(ROOT, 'tools', 'adapt.py')]
        launcher = []
    else:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
                   str(nproc), '--master_port', str(port),
                   osp.join(ROOT, 'tools', 'adapt.py')]
        launcher = ['--launcher', 'pytorch']
    argv = command + [CONFIG, '--work-dir', str(work_dir), *flags] + launcher + options
    done = subprocess.run(argv, env=env, timeout=timeout, capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout + done.stderr


def adapter_weights(work_dir):
    return IoUAdapter.load(osp.join(work_dir, 'iou_adapter.pth')).state_dict()


@pytest.mark.slow
def test_adapt_trains_saves_and_resumes(tmp_path, data_root):
    work_dir = tmp_path / 'run'
    log = adapt(work_dir, data_root, 'train_dataloader.batch_size=4')
    assert 'loss_rank' in log and 'adapt/refined_iou' in log
    assert 'adapt/top1_coarse_box' in log and 'adapt/top1_gt_refine' in log
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.exists() and checkpoint.stat().st_size < 100_000  # no SAM inside
    first = adapter_weights(work_dir)
    assert first['up.weight'].abs().sum() > 0  # trained away from its zero start

    # The refiner loads what the run wrote, also through a refine config's
    # --cfg-options refiner.iou_adapter.checkpoint=... (as the README says).
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'samrefiner', 'samrefiner_sam_toy.py'))
    cfg.merge_from_dict({'refiner.iou_adapter.checkpoint': str(work_dir / 'iou_adapter.pth')})
    refiner = build_in_scope(cfg.refiner)
    assert isinstance(refiner, SAMRefiner) and 'iou_adapter=IoUAdapter(' in repr(refiner)

    log = adapt(work_dir, data_root, 'train_dataloader.batch_size=4', 'train_cfg.max_epochs=2',
                flags=['--resume'])
    assert 'resumed epoch: 1' in log
    assert (work_dir / 'epoch_2.pth').exists()
    second = adapter_weights(work_dir)
    assert not torch.equal(first['up.weight'], second['up.weight'])


@pytest.mark.slow
def test_two_processes_give_the_adapter_of_one_with_the_same_total_batch(tmp_path, data_root):
    adapt(tmp_path / 'one', data_root, 'train_dataloader.batch_size=4', 'val_cfg=None',
          'val_dataloader=None', 'val_evaluator=None')
    adapt(tmp_path / 'two', data_root, 'train_dataloader.batch_size=2', 'val_cfg=None',
          'val_dataloader=None', 'val_evaluator=None', nproc=2)
    one, two = adapter_weights(tmp_path / 'one'), adapter_weights(tmp_path / 'two')
    assert one['up.weight'].abs().sum() > 0
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-6), name
