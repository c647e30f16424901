# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefinerHook in real Runner test loops: an mmdet Mask R-CNN and an mmseg
FCN (random init, tiny images) with the config lines from the README."""
import json
import os.path as osp
import re

import numpy as np
import pytest

from mmsamrefiner import SAMRefinerHook
from mmsamrefiner.mask_io import decode_rle
from mmsamrefiner.refiner.inputs import load_rgb_image

from ..mm_data import HEIGHT, WIDTH
from ..mm_runs import fcn_cfg, mask_rcnn_cfg, run_test, with_tiny_sam
from ..readme_snippets import readme_snippet


def test_mask_rcnn_test_loop_scores_refined_masks_and_exports(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          out_dir='pseudo_labels')
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    runner, hook, metrics, received = run_test(cfg)

    assert 'test_step' not in vars(runner.model)  # the hook restored the model's own step
    assert 'coco/segm_mAP' in metrics and metrics['recorded'] == 2
    assert hook.num_refined == 2 and hook.num_resumed == 0
    changed = 0
    for sample in received:
        pred = sample['pred_instances']
        masks, coarse = pred['masks'], pred['coarse_masks']
        assert masks.shape == coarse.shape == (len(pred['scores']), HEIGHT, WIDTH)
        changed += int((masks != coarse).any())
        # exactly what SAMRefiner gives for this image (right image, right frame)
        image = load_rgb_image(sample['img_path'])
        expected = hook.refiner().refine(image, coarse.numpy()).masks
        np.testing.assert_array_equal(masks.numpy(), expected)
    assert changed >= 1

    coco = json.load(open(osp.join(tmp_path, 'work', 'pseudo_labels', 'instances.json')))
    assert sorted(im['id'] for im in coco['images']) == [1, 2]
    by_image = {s['img_id']: s['pred_instances'] for s in received}
    for image_id, pred in by_image.items():
        anns = [a for a in coco['annotations'] if a['image_id'] == image_id]
        exported = decode_rle([a['segmentation'] for a in anns], HEIGHT, WIDTH)
        np.testing.assert_array_equal(exported, pred['masks'].numpy())
        assert [a['category_id'] for a in anns] == (pred['labels'] + 1).tolist()

    # a re-run resumes: nothing refined again, the evaluator gets the same masks
    cfg.work_dir = str(tmp_path / 'work')
    _, hook, _, again = run_test(cfg)
    assert hook.num_refined == 0 and hook.num_resumed == 2
    for first, second in zip(received, again):
        np.testing.assert_array_equal(first['pred_instances']['masks'],
                                      second['pred_instances']['masks'])


def test_score_threshold_leaves_low_scored_instances(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          score_thr=2.0)  # above any score
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    runner, hook, _, received = run_test(cfg)
    skipped = sum(len(sample['pred_instances']['scores']) for sample in received)
    assert skipped > 0 and len(received) == 2  # the hook ran on instances it left alone
    assert (hook.num_refined, hook.num_nothing_to_refine) == (0, 2)
    assert (hook.num_instances_refined, hook.num_instances_skipped) == (0, skipped)
    for sample in received:
        pred = sample['pred_instances']
        np.testing.assert_array_equal(pred['masks'], pred['coarse_masks'])
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert ('2 images: 0 refined, 2 with nothing to refine (kept as predicted), 0 reused' in log
            and f'instances: 0 refined, {skipped} skipped by score_thr=2.0' in log)


def mask_iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def test_encode_batch_encodes_a_batch_at_once_and_gives_the_same_masks(tmp_path, tiny_sam_cfg,
                                                                       monkeypatch):
    lines = readme_snippet('mmdet-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          encode_batch=2)
    cfg = mask_rcnn_cfg(tmp_path / 'coco', tmp_path / 'work', lines['custom_imports'], hooks)
    cfg.test_dataloader.batch_size = 2
    calls = []
    from mmsamrefiner import SAMRefiner
    encode_images = SAMRefiner.encode_images

    def counting(self, images, channel_order='rgb'):
        calls.append(len(images))
        return encode_images(self, images, channel_order)

    monkeypatch.setattr(SAMRefiner, 'encode_images', counting)
    _, hook, _, received = run_test(cfg)
    assert calls == [2] and hook.num_refined == 2  # both images in one encoder call
    for sample in received:
        pred = sample['pred_instances']
        image = load_rgb_image(sample['img_path'])
        expected = hook.refiner().refine(image, pred['coarse_masks'].numpy()).masks
        for got, want in zip(pred['masks'].numpy(), expected):
            assert mask_iou(got, want) >= 0.99


def test_fcn_test_loop_scores_refined_label_maps_and_exports(tmp_path, tiny_sam_cfg):
    lines = readme_snippet('mmseg-hook')
    hooks = with_tiny_sam(lines['custom_hooks'], tiny_sam_cfg, keep_coarse=True,
                          out_dir=str(tmp_path / 'labels'))
    cfg = fcn_cfg(tmp_path / 'seg', tmp_path / 'work', lines['custom_imports'], hooks)
    runner, hook, metrics, received = run_test(cfg)

    assert 'mIoU' in metrics and metrics['recorded'] == 2
    changed = 0
    for sample in received:
        refined = sample['pred_sem_seg']['data'][0]
        coarse = sample['coarse_sem_seg']['data'][0]
        assert refined.shape == coarse.shape == (HEIGHT, WIDTH)
        changed += int((refined != coarse).any())
        image = load_rgb_image(sample['img_path'])
        expected = hook.refiner().refine_semantic(image, coarse.numpy(), ignore_index=255,
                                                  background=0)
        np.testing.assert_array_equal(refined.numpy(), expected)
        stem = osp.splitext(osp.basename(sample['img_path']))[0]
        import cv2
        exported = cv2.imread(str(tmp_path / 'labels' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(exported, refined.numpy())
    assert changed >= 1

    _, hook, _, again = run_test(cfg)
    assert hook.num_refined == 0 and hook.num_resumed == 2
    for first, second in zip(received, again):
        np.testing.assert_array_equal(first['pred_sem_seg']['data'],
                                      second['pred_sem_seg']['data'])


def test_hook_refuses_unknown_modes():
    with pytest.raises(ValueError, match='modes must be among'):
        SAMRefinerHook(refiner=dict(type='SAMRefiner'), modes=('train', ))


@pytest.mark.parametrize('bad', ['0.5', True, [0.5]])
def test_hook_refuses_an_export_score_thr_that_is_not_a_score(bad):
    message = 'export_score_thr is a score .* got ' + re.escape(repr(bad))
    with pytest.raises(ValueError, match=message):
        SAMRefinerHook(refiner=dict(type='SAMRefiner'), export_score_thr=bad)


def test_hook_and_transform_build_by_bare_name_from_mmdet_and_mmseg_scopes(tiny_sam_cfg):
    from mmengine.registry import HOOKS, TRANSFORMS, DefaultScope

    import mmsamrefiner  # noqa: F401 - what custom_imports does
    for scope in ('mmdet', 'mmseg'):
        with DefaultScope.overwrite_default_scope(scope):
            for name in ('SAMRefinerHook', 'mmsamrefiner.SAMRefinerHook'):
                hook = HOOKS.build(dict(type=name, refiner=dict(type='SAMRefiner',
                                                                sam=tiny_sam_cfg)))
                assert isinstance(hook, SAMRefinerHook)
            for name in ('RefineCoarseMasks', 'mmsamrefiner.RefineCoarseMasks'):
                transform = TRANSFORMS.build(dict(type=name, refiner=dict(type='SAMRefiner',
                                                                          sam=tiny_sam_cfg)))
                assert type(transform).__name__ == 'RefineCoarseMasks'

