# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A real mmdet Runner: another Mask R-CNN tested into the same work dir gets
its own refined masks, not the export the first one left there."""
import json
import os.path as osp

import numpy as np
import pytest

from mmsamrefiner.mask_io import decode_rle
from mmsamrefiner.refiner.inputs import load_rgb_image

from ..mm_data import HEIGHT, WIDTH
from ..mm_runs import mask_rcnn_cfg, run_test, with_tiny_sam
from ..readme_snippets import readme_snippet


@pytest.mark.slow
def test_a_reinitialised_mask_rcnn_in_the_same_work_dir_gets_its_own_refined_masks(
        tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          out_dir='pseudo_labels')
    hooks[0]['refiner']['iters'] = 1
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    _, _, _, first = run_test(cfg)

    cfg.randomness = dict(seed=1)  # another model: its heads initialised otherwise
    runner, hook, metrics, second = run_test(cfg)
    assert 'coco/segm_mAP' in metrics
    assert (hook.num_refined, hook.num_resumed) == (2, 0)
    assert hook.report['stale_reasons'] == dict(prediction=2)
    assert any(a['pred_instances']['coarse_masks'].shape != b['pred_instances']['coarse_masks']
               .shape or (a['pred_instances']['coarse_masks'] !=
                          b['pred_instances']['coarse_masks']).any()
               for a, b in zip(first, second))

    # what the evaluator got, and what was exported, is a fresh refinement of
    # the second model's own predictions
    coco = json.load(open(osp.join(tmp_path, 'work', 'pseudo_labels', 'instances.json')))
    for sample in second:
        pred = sample['pred_instances']
        image = load_rgb_image(sample['img_path'])
        fresh = hook.refiner().refine(image, pred['coarse_masks'].numpy()).masks
        np.testing.assert_array_equal(pred['masks'].numpy(), fresh)
        anns = [a for a in coco['annotations'] if a['image_id'] == sample['img_id']]
        np.testing.assert_array_equal(
            decode_rle([a['segmentation'] for a in anns], HEIGHT, WIDTH), fresh)

    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert ('SAMRefinerHook (test): 2 images: 2 refined, 0 with nothing to refine (kept as '
            'predicted), 0 reused from a previous run') in log
    assert '2 earlier exports were stale (prediction differs: 2)' in log
