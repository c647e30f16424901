# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""PredictionRefiner on its own, with a stand-in refiner: what is encoded
together (``encode_batch``), what is read back, and the step wrapping."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmsamrefiner import SAMRefinerHook
from mmsamrefiner.engine.loop_report import LoopCounts
from mmsamrefiner.engine.prediction_refiner import (
    PredictionRefiner,
    RefineOptions,
    unwrap_step,
    wrap_step,
)
from mmsamrefiner.refiner.inputs import check_encode_batch

HEIGHT, WIDTH = 12, 16


class StandInRefiner:
    """Records encoder calls; "refines" by inverting the masks."""

    def __init__(self):
        self.encoded = []  # images per encode_images call
        self.refined = []  # whether each refine call got an embedding

    def encode_images(self, rgbs):
        self.encoded.append(len(rgbs))
        return [object() for _ in rgbs]

    def refine(self, image, masks, channel_order='rgb', image_embedding=None):
        assert (image is None) == (image_embedding is not None)
        self.refined.append(image_embedding is not None)
        return SimpleNamespace(masks=~masks)


class ReadBackEvery:
    """An export double that reads back the samples named in ``reused``."""

    def __init__(self, reused):
        self.reused = set(reused)
        self.written = []

    def read_back(self, data_sample, batch_input=None):
        return data_sample.metainfo['img_id'] in self.reused, 'key'

    def write(self, data_sample, key):
        self.written.append(data_sample.metainfo['img_id'])


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('img') / 'a.png')
    cv2.imwrite(path, np.full((HEIGHT, WIDTH, 3), 9, np.uint8))
    return path


def samples(image, count, scores=(0.9, 0.1)):
    out = []
    for img_id in range(count):
        sample = DetDataSample(metainfo=dict(img_id=img_id, img_path=image))
        sample.pred_instances = InstanceData(
            masks=torch.zeros(len(scores), HEIGHT, WIDTH, dtype=torch.bool),
            scores=torch.tensor(scores), labels=torch.zeros(len(scores), dtype=torch.int64))
        out.append(sample)
    return out


@pytest.mark.parametrize('encode_batch, calls', [(1, []), (2, [2, 2, 1]), (4, [4, 1]),
                                                 (5, [5]), (8, [5])])
def test_images_are_encoded_encode_batch_at_a_time(image, encode_batch, calls):
    refiner, counts = StandInRefiner(), LoopCounts()
    options = RefineOptions(score_thr=0.5, encode_batch=encode_batch)
    batch = samples(image, 5)
    PredictionRefiner(refiner, options, counts).refine_batch(batch, [None] * 5)
    assert refiner.encoded == calls
    assert refiner.refined == [bool(calls)] * 5
    assert (counts.num_refined, counts.num_nothing_to_refine, counts.num_instances_refined,
            counts.num_instances_skipped, counts.num_det_images) == (5, 0, 5, 5, 5)
    for sample in batch:  # the instance over score_thr was refined, the other kept
        assert sample.pred_instances.masks[0].all() and not sample.pred_instances.masks[1].any()


@pytest.mark.parametrize('encode_batch', [1, 3])
def test_images_with_nothing_over_score_thr_are_counted_apart_and_not_read(
        image, encode_batch):
    refiner, counts = StandInRefiner(), LoopCounts()
    batch = samples(image, 2) + samples(image, 1, scores=(0.2, )) + samples(image, 1, ())
    batch[2].set_metainfo(dict(img_path='/no/such/image.png'))  # never read
    batch[3].set_metainfo(dict(img_path='/no/such/image.png'))
    PredictionRefiner(refiner, RefineOptions(score_thr=0.5, encode_batch=encode_batch),
                      counts).refine_batch(batch, [None] * 4)
    assert refiner.encoded == ([] if encode_batch == 1 else [2])
    assert (counts.num_refined, counts.num_nothing_to_refine) == (2, 2)
    assert (counts.num_instances_refined, counts.num_instances_skipped) == (2, 3)


def test_samples_read_back_are_neither_encoded_nor_refined_nor_written(image):
    refiner, export = StandInRefiner(), ReadBackEvery(reused={1, 3})
    counts = LoopCounts()
    PredictionRefiner(refiner, RefineOptions(encode_batch=4), counts,
                      export).refine_batch(samples(image, 4), [None] * 4)
    assert refiner.encoded == [2] and export.written == [0, 2]
    assert (counts.num_refined, counts.num_det_images) == (2, 4)


def test_encode_batch_is_a_count_everywhere_and_a_bool_is_refused(tmp_path):
    assert [check_encode_batch(v) for v in (1, 3)] == [1, 3]
    from mmsamrefiner.apis import refine_collection
    from mmsamrefiner.mask_io.coarse_masks import LabelMaps
    (tmp_path / 'labels').mkdir()
    cv2.imwrite(str(tmp_path / 'labels' / 'a.png'), np.zeros((4, 4), np.uint8))
    source = LabelMaps(str(tmp_path / 'labels'), str(tmp_path))
    for bad in (True, False, 0, -2, 1.5, '2', None):
        for refuse in (check_encode_batch,
                       lambda v: SAMRefinerHook(refiner=dict(type='SAMRefiner'), encode_batch=v),
                       lambda v: RefineOptions(encode_batch=v),
                       lambda v: refine_collection(None, source, None, encode_batch=v)):
            with pytest.raises(ValueError, match='images per image-encoder call'):
                refuse(bad)
    assert SAMRefinerHook(refiner=dict(type='SAMRefiner'), encode_batch=3).options() \
        .encode_batch == 3


def test_the_wrapped_step_refines_its_outputs_and_unwrapping_restores_it():

    class Model:
        def test_step(self, data_batch):
            return ['a', 'b']

    model, seen = Model(), []
    wrap_step(model, 'test', lambda outputs, inputs: seen.append((outputs, inputs)))
    assert model.test_step(dict(inputs=['x', 'y'])) == ['a', 'b']
    assert model.test_step([]) == ['a', 'b']
    assert seen == [(['a', 'b'], ['x', 'y']), (['a', 'b'], [None, None])]
    unwrap_step(model, 'test')
    assert 'test_step' not in vars(model) and model.test_step(None) == ['a', 'b']
