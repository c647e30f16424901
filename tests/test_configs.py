# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The shipped configs parse and describe what their names say."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmsamrefiner.refiner.sam import SAM_CHECKPOINT_URLS

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs', 'samrefiner')


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(CONFIG_DIR, '*.py'))))
def test_refiner_configs(path):
    cfg = Config.fromfile(path).refiner
    assert cfg.type == 'SAMRefiner'
    arch = cfg.sam.arch
    assert arch in osp.basename(path)
    assert cfg.sam.checkpoint == SAM_CHECKPOINT_URLS[arch]
    assert cfg.margin == (0.1 if 'cebox' in path else 0.0)
    assert cfg.iters == 5 and cfg.gamma == 4.0 and cfg.strength == 30.0
