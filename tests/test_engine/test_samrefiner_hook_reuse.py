# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefinerHook's export is reused only for the same inputs.

The hook's loop methods are driven with a fake runner and model doubles whose
predictions are chosen by the test (two "checkpoints" = two prediction sets),
so each case takes a second or two; the real mmdet Runner case is in
``test_samrefiner_hook_rerun_runner.py``.
"""
import json
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmsamrefiner import SAMRefinerHook
from mmsamrefiner.synthetic import make_coarse_masks, make_scene
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

from ..tiny_models import make_tiny_sam

HEIGHT, WIDTH = 96, 128
SCORES = np.array([0.9, 0.5, 0.2], np.float32)


class RecordingLogger:
    def __init__(self):
        self.records = []

    def info(self, msg):
        self.records.append(('info', msg))

    def warning(self, msg):
        self.records.append(('warning', msg))

    def text(self, level=None):
        return '\n'.join(m for lv, m in self.records if level in (None, lv))


class DetDouble(torch.nn.Module):
    """An mmdet model double: ``test_step``/``val_step`` predict the instances
    it was given for each image id."""

    def __init__(self, predictions):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.predictions = predictions

    def test_step(self, data_batch):
        outputs = []
        for meta in data_batch['data_samples']:
            masks, scores, labels = self.predictions[meta['img_id']]
            sample = DetDataSample(metainfo=meta)
            sample.pred_instances = InstanceData(
                masks=torch.from_numpy(masks.copy()), scores=torch.from_numpy(scores.copy()),
                labels=torch.from_numpy(labels.copy()))
            outputs.append(sample)
        return outputs

    val_step = test_step


class SegDouble(torch.nn.Module):
    """An mmseg model double predicting the label map it was given per image."""

    def __init__(self, predictions):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.predictions = predictions

    def test_step(self, data_batch):
        outputs = []
        for meta in data_batch['data_samples']:
            sample = SegDataSample(metainfo=meta)
            sample.pred_sem_seg = PixelData(
                data=torch.from_numpy(self.predictions[meta['img_path']].copy())[None])
            outputs.append(sample)
        return outputs

    val_step = test_step


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Two scenes written as PNGs: ``[(img_id, img_path, scene)]``."""
    root = tmp_path_factory.mktemp('images')
    out = []
    for index in range(2):
        scene = make_scene(seed=index, height=HEIGHT, width=WIDTH)
        path = str(root / f'{index:04d}.png')
        cv2.imwrite(path, scene.image[..., ::-1])
        out.append((index + 1, path, scene))
    return out


def det_predictions(images, model_seed):
    """What one "checkpoint" predicts: coarse masks spoiled with its seed."""
    return {img_id: (make_coarse_masks(scene.masks, seed=100 * model_seed + img_id),
                     SCORES[:len(scene.masks)], scene.labels[:3] - 1)
            for img_id, _, scene in images}


def seg_predictions(images, model_seed):
    predictions = {}
    for img_id, path, scene in images:
        label_map = np.zeros((HEIGHT, WIDTH), np.int64)
        for mask, label in zip(make_coarse_masks(scene.masks, seed=100 * model_seed + img_id),
                               scene.labels):
            label_map[mask] = label
        predictions[path] = label_map
    return predictions


def fake_runner(model, work_dir):
    dataset = SimpleNamespace(metainfo=dict(classes=SHAPE_KINDS))
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset))
    return SimpleNamespace(model=model, work_dir=str(work_dir), logger=RecordingLogger(),
                           test_loop=loop, val_loop=loop)


def make_hook(sam_cfg, **options):
    refiner = dict(type='SAMRefiner', sam=sam_cfg, iters=options.pop('iters', 1))
    options.setdefault('out_dir', 'pseudo_labels')
    return SAMRefinerHook(refiner=refiner, **options)


def run_loop(hook, runner, images, mode='test'):
    """One loop (batches of one image): returns the refined predictions."""
    getattr(hook, f'before_{mode}')(runner)
    step = getattr(runner.model, f'{mode}_step')
    outputs = []
    for img_id, path, _ in images:
        meta = dict(img_id=img_id, img_path=path, ori_shape=(HEIGHT, WIDTH),
                    img_shape=(HEIGHT, WIDTH))
        outputs.extend(step(dict(data_samples=[meta])))
    getattr(hook, f'after_{mode}')(runner)
    return outputs


def det_masks(outputs):
    return [o.pred_instances.masks.numpy() for o in outputs]


def exported_det_masks(out_dir, images):
    coco = json.load(open(osp.join(out_dir, 'instances.json')))
    from mmsamrefiner.mask_io import decode_rle
    return [decode_rle([a['segmentation'] for a in coco['annotations'] if a['image_id'] == i],
                       HEIGHT, WIDTH) for i, _, _ in images]


def assert_all_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_another_detector_in_the_same_out_dir_gets_its_own_refined_masks(
        tmp_path, images, tiny_sam_cfg):
    first = fake_runner(DetDouble(det_predictions(images, 1)), tmp_path / 'work')
    run_loop(make_hook(tiny_sam_cfg), first, images)

    second = fake_runner(DetDouble(det_predictions(images, 2)), tmp_path / 'work')
    hook = make_hook(tiny_sam_cfg)
    got = det_masks(run_loop(hook, second, images))
    assert (hook.num_refined, hook.num_resumed, hook.num_stale) == (2, 0, 2)
    assert hook.report['stale_reasons'] == dict(prediction=2)

    fresh = fake_runner(DetDouble(det_predictions(images, 2)), tmp_path / 'fresh')
    want = det_masks(run_loop(make_hook(tiny_sam_cfg), fresh, images))
    assert_all_equal(got, want)
    # the stale export was overwritten with the second model's masks
    assert_all_equal(exported_det_masks(tmp_path / 'work' / 'pseudo_labels', images), want)
    assert '2 earlier exports were stale (prediction differs: 2)' in second.logger.text('info')


def test_the_same_detector_rerun_reuses_its_export_and_logs_it(tmp_path, images, tiny_sam_cfg):
    predictions = det_predictions(images, 1)
    first = fake_runner(DetDouble(predictions), tmp_path / 'work')
    want = det_masks(run_loop(make_hook(tiny_sam_cfg), first, images))
    assert 'SAMRefinerHook (test): 2 images: 2 refined, 0 with nothing to refine' \
        in first.logger.text()

    again = fake_runner(DetDouble(predictions), tmp_path / 'work')
    hook = make_hook(tiny_sam_cfg, keep_coarse=True)
    outputs = run_loop(hook, again, images)
    assert (hook.num_refined, hook.num_resumed, hook.num_stale) == (0, 2, 0)
    assert_all_equal(det_masks(outputs), want)
    for output, (img_id, _, _) in zip(outputs, images):
        np.testing.assert_array_equal(output.pred_instances.coarse_masks, predictions[img_id][0])
    assert ('SAMRefinerHook (test): 2 images: 0 refined, 0 with nothing to refine (kept as '
            'predicted), 2 reused from a previous run') in again.logger.text('info')
    assert 'instances: 0 refined, 0 skipped by score_thr=0.0, 6 read back refined' \
        in again.logger.text('info')


@pytest.mark.parametrize('change', ['iters', 'sam_checkpoint_content', 'score_thr'])
def test_a_changed_refiner_or_hook_setting_recomputes(tmp_path, images, tiny_sam_cfg, change):
    checkpoint = str(tmp_path / 'sam.pth')
    torch.save(make_tiny_sam(0).state_dict(), checkpoint)
    sam_cfg = dict(tiny_sam_cfg, checkpoint=checkpoint)
    predictions = det_predictions(images, 1)
    run_loop(make_hook(sam_cfg), fake_runner(DetDouble(predictions), tmp_path / 'w'), images)

    options = {}
    if change == 'iters':
        options['iters'] = 2
    elif change == 'sam_checkpoint_content':  # retrained weights, same path
        torch.save(make_tiny_sam(1).state_dict(), checkpoint)
    else:
        options['score_thr'] = 0.4
    hook = make_hook(sam_cfg, **options)
    got = det_masks(run_loop(hook, fake_runner(DetDouble(predictions), tmp_path / 'w'), images))
    assert (hook.num_refined, hook.num_resumed) == (2, 0)
    reason = 'settings' if change == 'score_thr' else 'refiner'
    assert hook.report['stale_reasons'] == {reason: 2}

    fresh = make_hook(sam_cfg, **options)
    want = det_masks(run_loop(fresh, fake_runner(DetDouble(predictions), tmp_path / 'f'), images))
    assert_all_equal(got, want)


def test_validation_never_reuses_exports_across_epochs(tmp_path, images, tiny_sam_cfg):
    hook = make_hook(tiny_sam_cfg)
    runner = fake_runner(DetDouble(det_predictions(images, 1)), tmp_path / 'work')
    run_loop(hook, runner, images, mode='val')
    # the next epoch predicts the same (e.g. a frozen model): still refined again
    run_loop(hook, runner, images, mode='val')
    assert (hook.num_refined, hook.num_resumed) == (2, 0)
    assert 'the val loop never reuses exports' in runner.logger.text('info')

    runner.model.predictions = det_predictions(images, 2)  # the model moved on
    got = det_masks(run_loop(hook, runner, images, mode='val'))
    assert (hook.num_refined, hook.num_resumed) == (2, 0)
    fresh = fake_runner(DetDouble(det_predictions(images, 2)), tmp_path / 'fresh')
    want = det_masks(run_loop(make_hook(tiny_sam_cfg), fresh, images, mode='val'))
    assert_all_equal(got, want)
    assert_all_equal(exported_det_masks(tmp_path / 'work' / 'pseudo_labels', images), want)
    # and a test loop after training reuses what the last validation computed
    test_hook = make_hook(tiny_sam_cfg)
    assert_all_equal(det_masks(run_loop(test_hook, runner, images)), want)
    assert test_hook.num_resumed == 2


def test_instances_refined_and_skipped_by_score_thr_are_reported(tmp_path, images,
                                                                 tiny_sam_cfg):
    hook = make_hook(tiny_sam_cfg, score_thr=0.4, out_dir=None)
    runner = fake_runner(DetDouble(det_predictions(images, 1)), tmp_path)
    run_loop(hook, runner, images)
    assert (hook.report['num_instances_refined'], hook.report['num_instances_skipped']) == (4, 2)
    assert 'instances: 4 refined, 2 skipped by score_thr=0.4' in runner.logger.text('info')
    assert runner.logger.text('warning') == ''


def test_a_score_thr_that_lets_no_instance_through_warns(tmp_path, images, tiny_sam_cfg):
    hook = make_hook(tiny_sam_cfg, score_thr=0.95, out_dir=None)
    runner = fake_runner(DetDouble(det_predictions(images, 1)), tmp_path)
    outputs = run_loop(hook, runner, images)
    assert hook.report['num_instances_refined'] == 0
    assert (hook.num_refined, hook.num_nothing_to_refine) == (0, 2)
    assert '2 images: 0 refined, 2 with nothing to refine' in runner.logger.text('info')
    assert 'score_thr=0.95 let no instance through: nothing was refined' \
        in runner.logger.text('warning')
    predictions = det_predictions(images, 1)
    for output, (img_id, _, _) in zip(outputs, images):
        np.testing.assert_array_equal(output.pred_instances.masks, predictions[img_id][0])


def seg_maps(outputs):
    return [o.pred_sem_seg.data[0].numpy() for o in outputs]


def test_another_segmentor_in_the_same_out_dir_gets_its_own_label_maps(tmp_path, images,
                                                                       tiny_sam_cfg):
    first = fake_runner(SegDouble(seg_predictions(images, 1)), tmp_path / 'work')
    first_maps = seg_maps(run_loop(make_hook(tiny_sam_cfg), first, images))

    second = fake_runner(SegDouble(seg_predictions(images, 2)), tmp_path / 'work')
    hook = make_hook(tiny_sam_cfg)
    got = seg_maps(run_loop(hook, second, images))
    assert (hook.num_refined, hook.num_resumed) == (2, 0)
    assert hook.report['stale_reasons'] == dict(prediction=2)
    fresh = fake_runner(SegDouble(seg_predictions(images, 2)), tmp_path / 'fresh')
    want = seg_maps(run_loop(make_hook(tiny_sam_cfg), fresh, images))
    assert_all_equal(got, want)
    assert any((a != b).any() for a, b in zip(first_maps, want))  # a real difference
    for (_, path, _), label_map in zip(images, want):
        stem = osp.splitext(osp.basename(path))[0]
        exported = cv2.imread(str(tmp_path / 'work' / 'pseudo_labels' / f'{stem}.png'),
                              cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(exported, label_map)

    # the second model again: reused, same maps
    again = fake_runner(SegDouble(seg_predictions(images, 2)), tmp_path / 'work')
    hook = make_hook(tiny_sam_cfg)
    assert_all_equal(seg_maps(run_loop(hook, again, images)), want)
    assert (hook.num_refined, hook.num_resumed) == (0, 2)
    assert '0 refined, 0 with nothing to refine (kept as predicted), 2 reused from a previous ' \
        'run' in again.logger.text('info')


def test_a_label_map_changed_or_unrecorded_since_is_recomputed(tmp_path, images,
                                                               tiny_sam_cfg):
    predictions = seg_predictions(images, 1)
    runner = fake_runner(SegDouble(predictions), tmp_path / 'work')
    want = seg_maps(run_loop(make_hook(tiny_sam_cfg), runner, images))
    # a PNG replaced since its record was written
    stem = osp.splitext(osp.basename(images[0][1]))[0]
    png = str(tmp_path / 'work' / 'pseudo_labels' / f'{stem}.png')
    cv2.imwrite(png, np.zeros((HEIGHT, WIDTH), np.uint8))
    # and a crash between the PNG and its record
    stem = osp.splitext(osp.basename(images[1][1]))[0]
    os.remove(str(tmp_path / 'work' / 'pseudo_labels' / '.records' / f'{stem}.json'))

    hook = make_hook(tiny_sam_cfg)
    got = seg_maps(run_loop(hook, fake_runner(SegDouble(predictions), tmp_path / 'work'), images))
    assert (hook.num_refined, hook.num_resumed, hook.num_stale) == (2, 0, 2)
    assert hook.report['stale_reasons'] == dict(damaged=1, unrecorded=1)
    assert_all_equal(got, want)


def no_predictions(images, empty):
    """``det_predictions`` of model 1, with no instance for the ids in ``empty``."""
    predictions = det_predictions(images, 1)
    for img_id in empty:
        predictions[img_id] = (np.zeros((0, HEIGHT, WIDTH), bool), np.zeros(0, np.float32),
                               np.zeros(0, np.int64))
    return predictions


def test_a_detector_that_predicts_nothing_exports_empty_images_warns_and_resumes(
        tmp_path, images, tiny_sam_cfg):
    predictions = no_predictions(images, empty=[1, 2])
    runner = fake_runner(DetDouble(predictions), tmp_path / 'work')
    hook = make_hook(tiny_sam_cfg, keep_coarse=True)
    outputs = run_loop(hook, runner, images)
    assert (hook.num_refined, hook.num_nothing_to_refine) == (0, 2)
    assert (hook.num_instances_refined, hook.num_instances_skipped) == (0, 0)
    assert '2 images: 0 refined, 2 with nothing to refine' in runner.logger.text('info')
    assert 'the model predicted no instance: nothing was refined' in runner.logger.text('warning')
    assert [o.pred_instances.coarse_masks.shape for o in outputs] == [(0, HEIGHT, WIDTH)] * 2
    coco = json.load(open(tmp_path / 'work' / 'pseudo_labels' / 'instances.json'))
    assert [im['id'] for im in coco['images']] == [1, 2] and coco['annotations'] == []

    again = fake_runner(DetDouble(predictions), tmp_path / 'work')
    hook = make_hook(tiny_sam_cfg)
    outputs = run_loop(hook, again, images)
    assert (hook.num_refined, hook.num_resumed, hook.num_stale) == (0, 2, 0)
    assert [o.pred_instances.masks.shape for o in outputs] == [(0, HEIGHT, WIDTH)] * 2
    assert '0 refined, 0 with nothing to refine (kept as predicted), 2 reused from a previous ' \
        'run' in again.logger.text('info')


def test_images_with_nothing_over_score_thr_are_not_encoded(tmp_path, images, tiny_sam_cfg,
                                                            monkeypatch):
    from mmsamrefiner import SAMRefiner
    encode_images, calls = SAMRefiner.encode_images, []

    def counting(self, rgbs, channel_order='rgb'):
        calls.append(len(rgbs))
        return encode_images(self, rgbs, channel_order)

    monkeypatch.setattr(SAMRefiner, 'encode_images', counting)
    hook = make_hook(tiny_sam_cfg, encode_batch=2, keep_coarse=True, out_dir=None)
    runner = fake_runner(DetDouble(no_predictions(images, empty=[2])), tmp_path)
    hook.before_test(runner)
    metas = [dict(img_id=img_id, img_path=path, ori_shape=(HEIGHT, WIDTH),
                  img_shape=(HEIGHT, WIDTH)) for img_id, path, _ in images]
    outputs = runner.model.test_step(dict(data_samples=metas))  # one batch of both
    hook.after_test(runner)
    assert calls == [1]  # image 2 has nothing to refine: not encoded
    assert (hook.num_refined, hook.num_nothing_to_refine) == (1, 1)
    assert outputs[1].pred_instances.masks.shape == (0, HEIGHT, WIDTH)
    assert (outputs[0].pred_instances.masks != outputs[0].pred_instances.coarse_masks).any()
