# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Shared fixtures: a small seeded SAM (:mod:`tests.tiny_models`) saved through
the real checkpoint path, and hand-made scenes."""
import numpy as np
import pytest
import torch

from .tiny_models import TINY_SAM_ARCH, disk, make_tiny_sam


@pytest.fixture(scope='session')
def tiny_sam_checkpoint(tmp_path_factory):
    """Path of a saved state dict of the tiny SAM (official key layout)."""
    path = tmp_path_factory.mktemp('ckpt') / 'tiny_sam.pth'
    torch.save(make_tiny_sam().state_dict(), path)
    return str(path)


@pytest.fixture(scope='session')
def tiny_sam_cfg(tiny_sam_checkpoint):
    return dict(type='SAM', arch=TINY_SAM_ARCH, checkpoint=tiny_sam_checkpoint)


@pytest.fixture
def tiny_sam():
    return make_tiny_sam()


@pytest.fixture
def scene():
    """A 96x120 RGB image with two objects and their (H, W) masks."""
    rng = np.random.default_rng(0)
    height, width = 96, 120
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    a = disk(height, width, 35, 40, 18)
    b = np.zeros((height, width), bool)
    b[20:70, 75:105] = True
    image[a] = (220, 40, 40)
    image[b] = (40, 200, 60)
    return image, np.stack([a, b])

