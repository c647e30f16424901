# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefinerDetLocalVisualizer in a real mmdet test loop: a Mask R-CNN
(random init, tiny images) refined by SAMRefinerHook, mmdet's
DetVisualizationHook saving its pictures to ``test_out_dir``."""
import os.path as osp

import numpy as np
import pytest
from mmdet.visualization import DetLocalVisualizer
from mmengine.config import Config

from mmsamrefiner.refiner.inputs import load_rgb_image

from ..mm_data import HEIGHT, WIDTH
from ..mm_runs import mask_rcnn_cfg, run_test, with_tiny_sam
from ..readme_snippets import readme_snippet
from ._pictures import panels, read_rgb, title_pixels

#: real mmdet test loops (four), seconds each on a 2-core CPU
pytestmark = pytest.mark.slow

CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'configs', 'mmdet',
                  'mask-rcnn_r50_fpn_1x_coco_samrefiner-test.py')



@pytest.fixture(scope='module')
def sam_cfg():
    """The shipped toy SAM: its refined masks are clean shapes, quick to draw."""
    return dict(type='SAM', arch='toy', checkpoint='mmsamrefiner://toy_sam.pth')


@pytest.fixture(scope='module')
def shipped_visualizer():
    """The visualizer of the shipped mmdet test config (mmdet's, type ours)."""
    return Config.fromfile(CONFIG).visualizer.to_dict()


def test_loop(root, sam_cfg, visualizer, keep_coarse):
    """Run a Mask R-CNN test loop in ``root`` with ``visualizer`` (a config
    dict) drawing every image (ground truth too, no score threshold); returns
    the samples the evaluator got and the saved picture of each, by image
    file name."""
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], sam_cfg, keep_coarse=keep_coarse,
                          out_dir=None)
    cfg = mask_rcnn_cfg(root / 'coco', root / 'work', lines['custom_imports'], hooks)
    pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline.insert(2, dict(type='LoadAnnotations', with_bbox=True, with_mask=True))
    cfg.visualizer = dict(visualizer, name=f'visualizer-{root}')  # a fresh instance
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=True,
                                           score_thr=0.0, test_out_dir='vis')
    runner, _, _, received = run_test(cfg)
    assert type(runner.visualizer).__name__ == visualizer['type'].rpartition('.')[2]
    out_dir = osp.join(runner.work_dir, runner.timestamp, 'vis')
    names = [osp.basename(sample['img_path']) for sample in received]
    pictures = {name: read_rgb(osp.join(out_dir, name)) for name in names}
    return received, pictures


test_loop.__test__ = False  # a helper, not a test


@pytest.fixture(scope='module')
def by_mmdet(tmp_path_factory, sam_cfg, shipped_visualizer):
    """The pictures mmdet's own DetLocalVisualizer saves (no coarse masks kept:
    it would not draw them)."""
    parent = dict(shipped_visualizer, type='DetLocalVisualizer')
    return test_loop(tmp_path_factory.mktemp('mmdet'), sam_cfg, parent, False)[1]


def test_the_picture_shows_ground_truth_coarse_and_refined_the_last_as_mmdet_draws_it(
        tmp_path, sam_cfg, shipped_visualizer, by_mmdet):
    received, ours = test_loop(tmp_path, sam_cfg, shipped_visualizer, True)
    titles = title_pixels((HEIGHT, WIDTH))
    for sample in received:
        name = osp.basename(sample['img_path'])
        picture = ours[name]
        assert picture.shape == (HEIGHT, 3 * WIDTH, 3)  # ground truth | coarse | refined
        ground_truth, _, refined = panels(picture, WIDTH)
        mmdet_truth, mmdet_prediction = panels(by_mmdet[name], WIDTH)
        np.testing.assert_array_equal(ground_truth, mmdet_truth)  # unchanged
        assert (ground_truth != load_rgb_image(sample['img_path'])).any()  # true masks drawn
        np.testing.assert_array_equal(refined[~titles], mmdet_prediction[~titles])
        assert (refined[titles] != mmdet_prediction[titles]).any()  # titled


def test_without_coarse_masks_the_picture_is_mmdets(tmp_path, sam_cfg, shipped_visualizer,
                                                    by_mmdet):
    received, ours = test_loop(tmp_path, sam_cfg, shipped_visualizer, False)
    assert 'coarse_masks' not in received[0]['pred_instances']
    assert by_mmdet.keys() == ours.keys() and len(ours) == 2
    for name, picture in ours.items():
        assert picture.shape == (HEIGHT, 2 * WIDTH, 3)
        np.testing.assert_array_equal(picture, by_mmdet[name])


def test_the_coarse_and_refined_panels_differ_exactly_where_the_masks_do(
        tmp_path, sam_cfg, shipped_visualizer, monkeypatch):
    # mmdet draws labels and white outlines too; without them a panel is the
    # image with each instance's mask blended in its colour (one colour per
    # instance in both panels), so a pixel differs between the panels exactly
    # where the set of instances covering it differs.
    monkeypatch.setattr(DetLocalVisualizer, 'draw_texts', lambda self, *args, **kwargs: self)
    monkeypatch.setattr(DetLocalVisualizer, 'draw_polygons',
                        lambda self, *args, **kwargs: self)
    received, ours = test_loop(tmp_path, sam_cfg, shipped_visualizer, True)
    titles = title_pixels((HEIGHT, WIDTH))
    changed = 0
    for sample in received:
        pred = sample['pred_instances']
        differs = (pred['coarse_masks'] != pred['masks']).any(0).numpy()
        changed += int(differs.any())
        _, coarse, refined = panels(ours[osp.basename(sample['img_path'])], WIDTH)
        drawn_differs = (coarse != refined).any(2)
        np.testing.assert_array_equal(drawn_differs[~titles], differs[~titles])
        assert pred['masks'].any() and (coarse[~titles] != load_rgb_image(
            sample['img_path'])[~titles]).any()  # masks are drawn
    assert changed >= 1


def test_drawing_leaves_the_data_sample_as_it_was(tmp_path):
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from mmsamrefiner.visualization.det_local_visualizer import SAMRefinerDetLocalVisualizer
    refined = torch.zeros(1, 40, 60, dtype=torch.bool)
    refined[0, 10:30, 10:40] = True
    coarse = torch.zeros_like(refined)
    coarse[0, 5:35, 5:50] = True
    sample = DetDataSample()
    sample.pred_instances = InstanceData(masks=refined.clone(), coarse_masks=coarse.clone(),
                                         scores=torch.tensor([0.9]), labels=torch.tensor([0]))
    visualizer = SAMRefinerDetLocalVisualizer.get_instance(f'visualizer-{tmp_path}')
    visualizer.dataset_meta = dict(classes=('thing', ), palette=[(220, 20, 60)])
    visualizer.add_datasample('image', np.full((40, 60, 3), 90, np.uint8), sample,
                              out_file=str(tmp_path / 'image.png'))
    assert read_rgb(tmp_path / 'image.png').shape == (40, 3 * 60, 3)
    np.testing.assert_array_equal(sample.pred_instances.masks, refined)
    np.testing.assert_array_equal(sample.pred_instances.coarse_masks, coarse)
    assert 'add_image' not in vars(visualizer)  # the backends get pictures again
