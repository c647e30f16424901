# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefinerSegLocalVisualizer in a real mmseg test loop: an FCN (random
init, tiny images) refined by SAMRefinerHook, mmseg's SegVisualizationHook
saving its pictures through the visualizer's LocalVisBackend."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmseg.visualization import SegLocalVisualizer

from ..mm_data import HEIGHT, WIDTH
from ..mm_runs import fcn_cfg, run_test, with_tiny_sam
from ..readme_snippets import readme_snippet
from ._pictures import panels, read_rgb, title_pixels

CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'configs', 'mmseg',
                  'deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512_samrefiner-test.py')



@pytest.fixture(scope='module')
def sam_cfg():
    """The shipped toy SAM: its refined maps differ from an FCN's coarse ones."""
    return dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth')


@pytest.fixture(scope='module')
def shipped_visualizer():
    """The visualizer of the shipped mmseg test config (mmseg's, type ours)."""
    return Config.fromfile(CONFIG).visualizer.to_dict()


def test_loop(root, sam_cfg, visualizer, keep_coarse):
    """Run an FCN test loop in ``root`` with ``visualizer`` (a config dict)
    drawing every image; returns the samples the evaluator got and the saved
    picture of each, by image file name."""
    lines = readme_snippet('mmseg-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], sam_cfg, keep_coarse=keep_coarse,
                          out_dir=None)
    cfg = fcn_cfg(root / 'seg', root / 'work', lines['custom_imports'], hooks)
    cfg.visualizer = dict(visualizer, name=f'visualizer-{root}', save_dir=str(root / 'vis'))
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True, interval=1)
    runner, _, _, received = run_test(cfg)
    assert type(runner.visualizer).__name__ == visualizer['type'].rpartition('.')[2]
    pictures = {}
    for sample in received:
        name = osp.basename(sample['img_path'])
        (path, ) = glob.glob(str(root / 'vis' / '**' / f'test_{name}_0.png'), recursive=True)
        pictures[name] = read_rgb(path)
    return received, pictures


test_loop.__test__ = False  # a helper, not a test


@pytest.fixture(scope='module')
def by_mmseg(tmp_path_factory, sam_cfg, shipped_visualizer):
    """The pictures mmseg's own SegLocalVisualizer saves (no coarse map kept:
    it would not draw it)."""
    parent = dict(shipped_visualizer, type='SegLocalVisualizer')
    return test_loop(tmp_path_factory.mktemp('mmseg'), sam_cfg, parent, False)[1]


def test_the_picture_shows_ground_truth_coarse_and_refined_the_last_as_mmseg_draws_it(
        tmp_path, sam_cfg, shipped_visualizer, by_mmseg):
    received, ours = test_loop(tmp_path, sam_cfg, shipped_visualizer, True)
    titles = title_pixels((HEIGHT, WIDTH))
    for sample in received:
        name = osp.basename(sample['img_path'])
        assert ours[name].shape == (HEIGHT, 3 * WIDTH, 3)  # ground truth | coarse | refined
        ground_truth, _, refined = panels(ours[name], WIDTH)
        mmseg_truth, mmseg_prediction = panels(by_mmseg[name], WIDTH)
        np.testing.assert_array_equal(ground_truth, mmseg_truth)  # unchanged
        np.testing.assert_array_equal(refined[~titles], mmseg_prediction[~titles])
        assert (refined[titles] != mmseg_prediction[titles]).any()  # titled


def test_without_a_coarse_map_the_picture_is_mmsegs(tmp_path, sam_cfg, shipped_visualizer,
                                                    by_mmseg):
    received, ours = test_loop(tmp_path, sam_cfg, shipped_visualizer, False)
    assert 'coarse_sem_seg' not in received[0]
    assert by_mmseg.keys() == ours.keys() and len(ours) == 2
    for name, picture in ours.items():
        assert picture.shape == (HEIGHT, 2 * WIDTH, 3)
        np.testing.assert_array_equal(picture, by_mmseg[name])


def test_the_coarse_and_refined_panels_differ_exactly_where_the_label_maps_do(
        tmp_path, sam_cfg, shipped_visualizer, monkeypatch):
    # mmseg writes each class's name at a point of its region; without the
    # names a panel is the image blended with each pixel's class colour, so
    # a pixel differs between the panels exactly where its label does.
    draw_sem_seg = SegLocalVisualizer._draw_sem_seg

    def without_names(self, image, sem_seg, classes, palette, with_labels=True):
        return draw_sem_seg(self, image, sem_seg, classes, palette, False)

    monkeypatch.setattr(SegLocalVisualizer, '_draw_sem_seg', without_names)
    received, ours = test_loop(tmp_path, sam_cfg, shipped_visualizer, True)
    titles = title_pixels((HEIGHT, WIDTH))
    changed = 0
    for sample in received:
        differs = (sample['coarse_sem_seg']['data'][0] !=
                   sample['pred_sem_seg']['data'][0]).numpy()
        changed += int(differs[~titles].any())
        _, coarse, refined = panels(ours[osp.basename(sample['img_path'])], WIDTH)
        drawn_differs = (coarse != refined).any(2)
        np.testing.assert_array_equal(drawn_differs[~titles], differs[~titles])
    assert changed >= 1
