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


def run(tool, work_dir, *extra, cycles=('3', '2')):
    tool.main(['--cycles', *cycles, '--lr', *['2e-3', '1e-3'][:len(cycles)],
               '--min-aspect', *['0.5', '0.3'][:len(cycles)],
               '--batch', '1', '--workers', '0',
               '--eval-scenes', '1', '--threads', '1', '--work-dir', str(work_dir),
               '--out', str(work_dir / 'toy.pth'), *extra])


def test_a_run_split_in_pieces_equals_an_uninterrupted_one(trainer_tool, tmp_path):
    """Three pieces: steps 1-2, 3-4 (across the warm restart), 5."""
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


def test_a_finished_run_grows_by_a_cycle(trainer_tool, tmp_path):
    """A run of one cycle, resumed with a second cycle added, equals the
    two-cycle run: the first cycle's schedule does not depend on later ones."""
    run(trainer_tool, tmp_path / 'whole')
    run(trainer_tool, tmp_path / 'grown', cycles=('3', ))
    run(trainer_tool, tmp_path / 'grown', '--resume')
    whole = torch.load(tmp_path / 'whole' / 'toy.pth')
    grown = torch.load(tmp_path / 'grown' / 'toy.pth')
    for key in whole:
        torch.testing.assert_close(grown[key], whole[key], rtol=0, atol=0)


def test_resume_refuses_other_settings(trainer_tool, tmp_path):
    run(trainer_tool, tmp_path, '--stop-at', '4')
    same = ['--cycles', '3', '2', '--lr', '2e-3', '1e-3', '--min-aspect', '0.5', '0.3']
    for other in (['--cycles', '3', '3', *same[3:]],  # step 4 is in cycle 2
                  [*same[:5], '5e-4', *same[6:]],
                  [*same[:-1], '0.4'],
                  [*same, '--seed', '1']):
        with pytest.raises(SystemExit, match='resume with the same seed'):
            trainer_tool.main([*other, '--batch', '1', '--resume',
                               '--work-dir', str(tmp_path), '--workers', '0'])


def test_each_cycle_has_its_narrowest_aspect(trainer_tool):
    dataset = trainer_tool.SceneDataset(seed=0, size=256, low_res=128, length=400,
                                        min_aspect=((0, 0.9), (200, 0.3)))
    aspects = [min(dataset[i]['image'].shape[:2]) / 256 for i in range(0, 400, 10)]
    assert min(aspects[:20]) >= 0.89
    assert min(aspects[20:]) < 0.6


def test_learning_rate_restarts_at_each_cycle(trainer_tool):
    factor = trainer_tool.lr_factor
    cycles, lrs = [60, 30], [2e-3, 1e-3]
    assert factor(0, cycles, lrs) == pytest.approx(1 / 2)  # warm-up: 2 steps
    assert factor(1, cycles, lrs) == pytest.approx(1.0, abs=1e-2)
    assert factor(59, cycles, lrs) == pytest.approx(0.0, abs=1e-2)
    assert factor(60, cycles, lrs) == pytest.approx(0.5 * 1.0)  # 1 warm-up step of cycle 2
    assert factor(75, cycles, lrs) == pytest.approx(0.5 * 0.5)
    assert factor(90, cycles, lrs) == pytest.approx(0.0)
    assert factor(500, cycles, lrs) == pytest.approx(0.0)


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
