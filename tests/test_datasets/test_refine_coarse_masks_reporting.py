# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""RefineCoarseMasks: per-epoch totals in the log, the all-fail stop, and a
cache key that follows the checkpoint's content."""
import os
import re

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub, MMLogger
from torch.utils.data import DataLoader

from ..tiny_models import TINY_SAM_ARCH, make_tiny_sam
from .pipelines import coco_dataset, transform_cfg


@pytest.fixture
def log_file(tmp_path):
    """A current MMLogger writing to a file (also from forked workers)."""
    path = tmp_path / 'run.log'
    MMLogger.get_instance(f'refine_log_{tmp_path.name}', log_file=str(path))
    return path


def totals(log_file, what):
    """(samples, refined, cached, failed) of each logged totals line of ``what``."""
    pattern = (r'RefineCoarseMasks totals of ' + what +
               r'.*?: (\d+) samples: (\d+) refined, (\d+) from cache, (\d+) failed')
    return [tuple(int(v) for v in m) for m in re.findall(pattern, log_file.read_text())]


def test_float_images_stop_after_the_first_samples_all_failed(tmp_path, tiny_sam_cfg):
    dataset = coco_dataset(tmp_path, transform_cfg(tiny_sam_cfg, tmp_path / 'cache'),
                           to_float32=True)
    refine = dataset.pipeline.transforms[-1]
    assert refine.fail_fast_after == 8
    for index in range(7):  # kept coarse, counted, logged
        result = dataset[index % 2]
        np.testing.assert_array_equal(result['gt_masks'].to_ndarray(),
                                      result['coarse_masks'].to_ndarray())
    assert refine.num_failed == 7
    with pytest.raises(RuntimeError) as info:
        dataset[0]
    message = str(info.value)
    assert 'the first 8 samples' in message and 'all failed' in message
    assert re.search(r'First error on \S+0000\.png: TypeError: img is float32, not uint8', message)
    assert 'LoadImageFromFile(to_float32=True)' in message and 'fail_fast_after=0' in message
    assert not os.path.exists(tmp_path / 'cache')  # nothing refined, nothing cached


def test_failures_after_a_success_only_log(tmp_path, tiny_sam_cfg, scene):
    from mmdet.structures.mask import BitmapMasks

    from mmsamrefiner import RefineCoarseMasks
    image, masks = scene
    transform = RefineCoarseMasks(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg, iters=1),
                                  fail_fast_after=2, log_interval=0)

    def sample(img):
        return dict(img=img, gt_masks=BitmapMasks(masks.astype(np.uint8), *masks.shape[1:]))

    transform(sample(image))
    for _ in range(4):  # the pipeline works; these samples are the odd ones out
        transform(sample(image.astype(np.float32)))
    assert (transform.num_refined, transform.num_failed) == (1, 4)

    never = RefineCoarseMasks(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg),
                              fail_fast_after=0, log_interval=0)
    for _ in range(10):
        never(sample(image.astype(np.float32)))
    assert never.num_failed == 10


def test_per_epoch_totals_are_logged_in_the_main_process(tmp_path, tiny_sam_cfg, log_file):
    dataset = coco_dataset(tmp_path, transform_cfg(tiny_sam_cfg, tmp_path / 'cache'))
    hub = MessageHub.get_instance(f'refine_epochs_{tmp_path.name}')  # the runner's
    for epoch in range(2):
        hub.update_info('epoch', epoch)
        dataset[0], dataset[1]
    hub.update_info('epoch', 2)
    dataset[0]  # the third epoch's first sample closes the second
    assert totals(log_file, r'epoch 1 in the main process') == [(2, 2, 0, 0)]
    assert totals(log_file, r'epoch 2 in the main process') == [(2, 0, 2, 0)]


def test_per_epoch_totals_are_logged_by_each_dataloader_worker(tmp_path, tiny_sam_cfg,
                                                               log_file):
    dataset = coco_dataset(tmp_path, transform_cfg(tiny_sam_cfg, tmp_path / 'cache',
                                                   log_interval=1))
    loader = DataLoader(dataset, batch_size=1, num_workers=1, collate_fn=pseudo_collate,
                        persistent_workers=False, multiprocessing_context='fork')
    for _ in range(2):  # two epochs: a fresh worker each
        assert len(list(loader)) == 2
    # each worker's exit line is its epoch's totals: first SAM, then the cache
    assert totals(log_file, r'DataLoader worker 0 of 1') == [(2, 2, 0, 0), (2, 0, 2, 0)]
    # and with log_interval=1 every sample gave a running line
    assert len(re.findall(r'so far in DataLoader worker 0 of 1', log_file.read_text())) == 4


def test_a_retrained_checkpoint_at_the_same_path_misses_the_cache(tmp_path, scene):
    from mmdet.structures.mask import BitmapMasks

    from mmsamrefiner import RefineCoarseMasks
    image, masks = scene
    checkpoint = tmp_path / 'sam.pth'
    torch.save(make_tiny_sam(seed=0).state_dict(), checkpoint)
    cfg = dict(type='SAMRefiner', iters=2,
               sam=dict(type='SAM', arch=TINY_SAM_ARCH, checkpoint=str(checkpoint)))

    def run():  # a new run: a fresh transform, same config and cache
        transform = RefineCoarseMasks(refiner=cfg, cache_dir=str(tmp_path / 'cache'))
        out = transform(dict(img=image.copy(), gt_masks=BitmapMasks(
            masks.astype(np.uint8), *masks.shape[1:])))
        return transform, out['gt_masks'].to_ndarray().astype(bool)

    first, before = run()
    again, same = run()
    assert (first.num_refined, again.num_cached) == (1, 1)  # same weights: a hit
    np.testing.assert_array_equal(same, before)

    torch.save(make_tiny_sam(seed=1).state_dict(), checkpoint)  # retrained, same path
    retrained, after = run()
    assert (retrained.num_refined, retrained.num_cached) == (1, 0)
    expected = retrained.refiner.refine(image, masks, channel_order='bgr').masks
    np.testing.assert_array_equal(after, expected)
    assert (after != before).any()
    entries = [os.path.join(d, f) for d, _, files in os.walk(tmp_path / 'cache') for f in files]
    assert len(entries) == 2
    assert all(os.path.getsize(e) < masks.size / 4 for e in entries)  # bit-packed
