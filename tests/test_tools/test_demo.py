# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/demo.py, the quick start's main job, runs as the README says."""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))


def run_demo(*args):
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'demo.py'), *args],
                          capture_output=True, text=True, check=True).stdout


def test_embedded_default_uses_the_toy_sam_and_writes_a_picture(tmp_path):
    out = run_demo('--out-dir', str(tmp_path), '--iters', '1')
    assert 'toy SAM' in out and 'RANDOM' not in out
    assert 'mean IoU against the true masks' in out
    picture = cv2.imread(str(tmp_path / 'demo.png'))
    assert picture is not None and picture.shape[0] == 288
    assert picture.shape[1] > 4 * 384  # image | coarse | refined | true


def test_random_weights_are_announced(tmp_path):
    out = run_demo('--out-dir', str(tmp_path), '--iters', '1', '--checkpoint', 'none')
    assert 'RANDOM' in out and 'meaningless' in out


def test_user_image_and_masks(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)
    mask = np.zeros((60, 80), np.uint8)
    mask[10:40, 20:50] = 255
    cv2.imwrite(str(tmp_path / 'img.png'), image)
    cv2.imwrite(str(tmp_path / 'mask.png'), mask)
    out = run_demo('--image', str(tmp_path / 'img.png'), '--masks',
                   str(tmp_path / 'mask.png'), '--out-dir', str(tmp_path), '--iters', '1')
    assert '1 coarse masks' in out
    assert (tmp_path / 'demo.png').exists()
