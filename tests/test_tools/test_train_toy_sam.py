# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/train_toy_sam.py: the recipe's data frames and resumable pieces."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))


@pytest.fixture(scope='module')
def trainer_tool():
    spec = importlib.util.spec_from_file_location(
        'train_toy_sam', osp.join(ROOT, 'tools', 'train_toy_sam.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()  # the tool sets one thread: restore it
    yield module
    torch.set_num_threads(threads)


def run(tool, work_dir, *extra):
    tool.main(['--steps', '5', '--batch', '1', '--workers', '0',
               '--eval-scenes', '1', '--threads', '1', '--work-dir', str(work_dir),
               '--out', str(work_dir / 'toy.pth'), *extra])


def test_a_run_split_in_pieces_equals_an_uninterrupted_one(trainer_tool, tmp_path):
    """Three pieces: steps 1-2, 3-4, 5."""
    run(trainer_tool, tmp_path / 'whole')
    run(trainer_tool, tmp_path / 'pieces', '--stop-at', '2')
    assert not osp.exists(tmp_path / 'pieces' / 'toy.pth')
    run(trainer_tool, tmp_path / 'pieces', '--resume', '--stop-at', '4')
    run(trainer_tool, tmp_path / 'pieces', '--resume')
    whole = torch.load(tmp_path / 'whole' / 'toy.pth')
    pieces = torch.load(tmp_path / 'pieces' / 'toy.pth')
    assert whole.keys() == pieces.keys()
    for key in whole:
        torch.testing.assert_close(pieces[key], whole[key], rtol=0, atol=0)


def test_resume_refuses_other_settings(trainer_tool, tmp_path):
    run(trainer_tool, tmp_path, '--stop-at', '1')
    with pytest.raises(SystemExit, match='resume with the same values'):
        trainer_tool.main(['--steps', '6', '--resume',
                           '--work-dir', str(tmp_path), '--workers', '0'])


def test_training_items_are_in_the_encoders_input_frame(trainer_tool):
    """Boxes, positive points and targets of an item agree: the target's mass
    lies inside its box, the first point is on the target."""
    dataset = trainer_tool.SceneDataset(seed=0, size=256, low_res=128, length=10)
    for index in range(3):
        item = dataset[index]
        height, width = item['image'].shape[:2]
        assert max(height, width) == 256
        cell = 256 / 128
        for box, points, target in zip(item['box'], item['points'], item['target']):
            ys, xs = np.nonzero(target > 0.5)
            if not len(ys):
                continue
            x, y = points[0]
            assert target[int(y / cell), int(x / cell)] > 0  # the positive point
            tight = trainer_tool.tight_box(target > 0.5) * cell
            assert np.all(np.abs(box - tight) <= 0.35 * (tight[2:] - tight[:2]).max() + 2 * cell)
