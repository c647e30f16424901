# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Running mmdet's / mmseg's installed ``tools/train.py`` and ``tools/test.py``
as a user does, on configs the tests derive from the shipped ones."""
import importlib
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mm_tool(package: str, name: str) -> str:
    """Path of ``tools/<name>`` in the copy pip installs with ``package``
    (``<package dir>/.mim/tools/``)."""
    path = osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim', 'tools', name)
    assert osp.isfile(path), f'{package} was installed without {path}'
    return path


def mm_config(package: str, name: str) -> str:
    """Path of ``configs/<name>`` in the copy pip installs with ``package``."""
    return osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim', 'configs',
                    name)


def shipped_config(name: str) -> Config:
    """``configs/<name>`` of this repository, loaded."""
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def run_tool(package: str, tool: str, *args: str, cwd: str, timeout: int = 240) -> str:
    """Run ``python <package>/.mim/tools/<tool> args`` (with this repository on
    the path, one thread) in ``cwd``; returns its output, fails with it."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, mm_tool(package, tool), *args], cwd=cwd, env=env,
                          timeout=timeout, capture_output=True, text=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output


def tiny_runtime(cfg: Config) -> None:
    """One process, no workers, seeded, a log line per iteration, no val."""
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.logger.interval = 1
    cfg.env_cfg.mp_cfg = dict(mp_start_method='fork', opencv_num_threads=0)
    for name in ('train_dataloader', 'test_dataloader'):
        if name in cfg:
            cfg[name].update(num_workers=0, persistent_workers=False)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
