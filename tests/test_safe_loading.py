# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""No checkpoint can run code through any loader of the package: the SAM (by
path and by URL), the IoU adapter, the refiner, the hook, the transform,
mmengine's runner checkpoints after ``import mmsamrefiner``,
``tools/adapt.py`` and ``tools/train_toy_sam.py --resume``; and mmengine's
own checkpoints still load, with nothing added to torch's process-wide list.

The gadgets are built by :mod:`tests.hostile_checkpoints`; each creates a
marker file if it runs."""
import hashlib
import importlib.util
import os
import os.path as osp
import pickle
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

import mmsamrefiner
from mmsamrefiner import runner_checkpoints
from mmsamrefiner.refiner.iou_adapter import IoUAdapter
from mmsamrefiner.refiner.sam import build_sam
from tests.hostile_checkpoints import GADGETS, assert_did_not_run, write_gadget_checkpoint
from tests.loopback_http import serve_folder
from tests.tiny_models import TINY_SAM_ARCH, make_tiny_sam

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(params=GADGETS)
def gadget(request, tmp_path):
    """``(path, marker)`` of a hostile checkpoint of each kind."""
    marker = str(tmp_path / 'it-ran')
    return write_gadget_checkpoint(tmp_path / f'{request.param}.pth', request.param,
                                   marker), marker


def refused(load, marker, error=Exception):
    with pytest.raises(error) as info:
        load()
    assert_did_not_run(marker)
    return str(info.value)


def test_the_gadgets_run_code_when_loaded_unsafely(tmp_path):
    """The gadgets are real: a full unpickler runs each of them, and the
    allow-list that held ``getattr`` and ``Counter`` ran the first."""
    for kind in GADGETS:
        marker = tmp_path / f'{kind}.ran'
        torch.load(write_gadget_checkpoint(tmp_path / f'{kind}.pth', kind, marker),
                   weights_only=False)
        assert marker.exists(), kind
    marker = tmp_path / 'allow-listed.ran'
    path = write_gadget_checkpoint(tmp_path / 'getattr2.pth', 'getattr', marker)
    with torch.serialization.safe_globals([getattr, Counter]):
        torch.load(path, weights_only=True)
    assert marker.exists()


def test_sam_checkpoint_by_path(gadget):
    path, marker = gadget
    message = refused(lambda: build_sam(TINY_SAM_ARCH, path), marker, ValueError)
    assert 'cannot be loaded' in message and path in message


def test_sam_checkpoint_by_url_that_passes_its_digest(gadget, tmp_path, monkeypatch):
    path, marker = gadget
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    sha256 = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    with serve_folder(osp.dirname(path)) as (base, _):
        refused(lambda: build_sam(TINY_SAM_ARCH, f'{base}/{osp.basename(path)}',
                                  sha256=sha256), marker, ValueError)


def test_iou_adapter_and_refiner(gadget, tiny_sam):
    from mmsamrefiner import SAMRefiner
    path, marker = gadget
    refused(lambda: IoUAdapter.load(path), marker, ValueError)
    refused(lambda: SAMRefiner(tiny_sam, iou_adapter=dict(checkpoint=path)), marker,
            ValueError)


def test_hook_and_transform_configs(gadget):
    from mmsamrefiner.datasets.transforms.refine_coarse_masks import RefineCoarseMasks
    from mmsamrefiner.engine.hooks.samrefiner_hook import SAMRefinerHook
    path, marker = gadget
    refiner = dict(type='SAMRefiner', sam=dict(type='SAM', arch=TINY_SAM_ARCH,
                                               checkpoint=path))
    refused(lambda: SAMRefinerHook(refiner=refiner).refiner(), marker, ValueError)
    refused(lambda: RefineCoarseMasks(refiner=refiner).refiner, marker, ValueError)


def test_runner_checkpoints_after_import(gadget):
    """mmengine's loader of local files, as ``Runner.load_checkpoint`` and
    ``resume`` call it, once ``import mmsamrefiner`` installed ours."""
    from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint
    assert runner_checkpoints.install(force_import=True)
    path, marker = gadget
    refused(lambda: _load_checkpoint(path, map_location='cpu'), marker, pickle.UnpicklingError)
    refused(lambda: load_checkpoint(torch.nn.Linear(1, 1), path), marker,
            pickle.UnpicklingError)


def message_hub_checkpoint(path) -> None:
    """What mmengine's ``Runner.save_checkpoint`` writes besides weights: the
    message hub (HistoryBuffers, numpy scalars and arrays) and numpy meta."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('safe-loading-test')
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_scalar('train/lr', 0.01)
    hub.update_info('iter', 3)
    hub.update_info('sizes', np.arange(4, dtype=np.int32))
    torch.save(dict(meta=dict(seed=np.int64(7), epoch=1, dtype=np.dtype('float32')),
                    state_dict=torch.nn.Linear(1, 1).state_dict(),
                    message_hub=hub.state_dict()), path)


def test_runner_checkpoints_load_and_the_allowance_is_scoped(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'epoch_1.pth')
    message_hub_checkpoint(path)
    assert runner_checkpoints.install(force_import=True)
    loaded = _load_checkpoint(path, map_location='cpu')
    assert loaded['meta']['seed'] == 7
    buffers = loaded['message_hub']['log_scalars']
    assert buffers['train/loss'].current() == 0.25
    np.testing.assert_array_equal(loaded['message_hub']['runtime_info']['sizes'], np.arange(4))
    # nothing was added process-wide: a plain weights-only load still refuses it
    process_wide = [g[0] if isinstance(g, tuple) else g
                    for g in torch.serialization.get_safe_globals()]
    assert getattr not in process_wide and np.ndarray not in process_wide
    assert runner_checkpoints.history_buffer_statistic not in process_wide
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer|numpy'):
        torch.load(path, weights_only=True)


def test_import_installs_only_when_the_runner_is_loaded():
    code = ('import sys, mmsamrefiner; '
            'print("mmengine.runner.checkpoint" in sys.modules); '
            'from mmengine.runner import Runner; import importlib; '
            'import mmsamrefiner.runner_checkpoints as rc; '
            'from mmengine.runner.checkpoint import CheckpointLoader; '
            'print(CheckpointLoader._schemes[""] is rc._load_from_local)')
    lazy = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
    assert lazy.stdout.split() == ['False', 'False'], lazy.stderr[-2000:]
    code = ('from mmengine.runner import Runner; import mmsamrefiner; '
            'from mmengine.runner.checkpoint import CheckpointLoader; '
            'import mmsamrefiner.runner_checkpoints as rc; '
            'print(CheckpointLoader._schemes[""] is rc._load_from_local)')
    eager = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
    assert eager.stdout.split() == ['True'], eager.stderr[-2000:]
    assert mmsamrefiner.runner_checkpoints is runner_checkpoints


def test_train_toy_sam_resume(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'train_toy_sam', osp.join(ROOT, 'tools', 'train_toy_sam.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    threads = torch.get_num_threads()
    marker = str(tmp_path / 'it-ran')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    write_gadget_checkpoint(work_dir / 'step_2.pth', 'getattr', marker)
    try:
        refused(lambda: tool.main(['--cycles', '3', '--lr', '2e-3', '--min-aspect', '0.5',
                                   '--batch', '1', '--workers', '0', '--threads', '1', '--work-dir',
                                   str(work_dir), '--out', str(tmp_path / 'toy.pth'),
                                   '--resume']), marker, pickle.UnpicklingError)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize('where', ['sam', 'resume'])
def test_adapt_tool(where, tmp_path):
    """``tools/adapt.py`` with a hostile SAM checkpoint in its config, or a
    hostile runner checkpoint to resume from: it fails, and runs nothing."""
    marker = str(tmp_path / 'it-ran')
    kind = 'getattr' if where == 'sam' else 'history_buffer'
    path = write_gadget_checkpoint(tmp_path / 'hostile.pth', kind, marker)
    config = osp.join(ROOT, 'configs', 'samrefiner_pp',
                      'samrefiner-pp_sam_toy_1xb5-1e_synthetic.py')
    from mmsamrefiner.synthetic.coco_collection import write_coco_collection
    data = tmp_path / 'data'
    for name, coarse in (('gt', False), ('coarse', True)):
        write_coco_collection(str(data / name), num_images=4, coarse=coarse, seed=700,
                              height=120, width=160, num_objects=3)
    options = [f'train_dataloader.dataset.data_root={data}',
               f'val_dataloader.dataset.data_root={data}']
    if where == 'sam':
        extra = ['--cfg-options', f'model.refiner.sam.checkpoint={path}', *options]
    else:
        extra = ['--resume', path, '--cfg-options', *options]
    done = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'adapt.py'), config,
                           '--work-dir', str(tmp_path / 'work'), *extra],
                          env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT),
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert_did_not_run(marker)
    assert 'Weights only load failed' in done.stderr or 'cannot be loaded' in done.stderr, \
        done.stderr[-3000:]


def test_tiny_sam_still_loads(tiny_sam_checkpoint):
    sam = build_sam(TINY_SAM_ARCH, tiny_sam_checkpoint)
    reference = make_tiny_sam().state_dict()
    assert all(torch.equal(sam.state_dict()[k], v) for k, v in reference.items())
