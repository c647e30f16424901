# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/benchmark_speed.py --collection: configurations split by who takes
their settings (unknown ones skipped with the reason), stages timed with the
refiner's own methods (and put back), and the mode end to end on a small
generated collection with the tiny SAM and a stand-in."""
import json
import os.path as osp
import sys
from functools import partial

import pytest

from mmsamrefiner import SAMRefiner
from mmsamrefiner.synthetic import make_crowded_scene
from mmsamrefiner.synthetic.coco_collection import write_coco_collection
from mmsamrefiner.testing import collection_speed as speed

from .tool_modules import load_tool

bench = load_tool('benchmark_speed')


def test_settings_go_to_the_refiner_or_to_refine_collection():
    config = speed.split_settings('b', dict(encoder_dtype='bfloat16', encode_batch=2))
    assert config.refiner == dict(encoder_dtype='bfloat16')
    assert config.collection == dict(encode_batch=2) and not config.skipped
    unknown = speed.split_settings('u', dict(encode_batch=2, no_such_setting=1))
    assert "['no_such_setting'] taken neither by SAMRefiner nor by refine_collection" in \
        unknown.skipped


def test_a_setting_the_refiner_refuses_skips_the_configuration(tiny_sam):
    config = speed.split_settings('x', dict(encoder_dtype='int8'))
    assert speed.build_refiner(tiny_sam, config, 'cpu', {}) is None
    assert 'the refiner refuses its settings: encoder_dtype must be' in config.skipped


@pytest.fixture
def small_collection(tmp_path):
    make = partial(make_crowded_scene, height=72, width=96, num_objects=(3, 5))
    ann_file = write_coco_collection(str(tmp_path / 'coarse'), 2, coarse=True, make=make)
    return ann_file, str(tmp_path / 'coarse' / 'images')


def test_stage_times_cover_every_stage_and_put_the_methods_back(tiny_sam, small_collection,
                                                               tmp_path):
    refiner = SAMRefiner(tiny_sam, iters=1)
    collection = speed.open_output(*small_collection, str(tmp_path / 'out.json'))
    stages, embedding = speed.stage_times(refiner, collection)
    assert set(stages) == set(speed.STAGES)
    assert all(stages[s] > 0 for s in ('read', 'annotations', 'encoder', 'mining', 'decoder'))
    assert embedding.shape == (1, 32, 8, 8)
    assert not {'mine', 'decode', 'upscale'} & set(vars(refiner))
    assert not {'preprocess', 'run_encoder'} & set(vars(refiner.backend))
    # what was written is what refine_collection writes
    seconds, summary = speed.time_collection(
        refiner, speed.open_output(*small_collection, str(tmp_path / 'e2e.json')), {})
    assert summary['done'] == 2 and not summary['failed'] and seconds > 0
    assert speed.mask_agreement(collection, speed.open_output(
        *small_collection, str(tmp_path / 'e2e.json'))) == (1.0, 1.0)


def test_collection_mode_end_to_end_with_a_stand_in(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [
        'benchmark_speed.py', '--collection', '2', '--stand-in', '--arch', 'vit_b',
        '--height', '72', '--width', '96', '--iters', '1', '--runs', '1', '--warmup', '0',
        '--device', 'cpu', '--out-dir', str(tmp_path),
        '--setting', 'one-by-one', '{}', '--setting', 'batched', '{"encode_batch": 2}',
        '--setting', 'later', '{"workers_of_the_future": 2}'])
    bench.main()
    out = capsys.readouterr().out
    assert "skipping later: setting(s) ['workers_of_the_future']" in out
    result = json.load(open(osp.join(tmp_path, 'collection_stand-in_sam_vit_b_cpu.json')))
    assert result['images'] == 2 and [r['name'] for r in result['rows']] == ['one-by-one',
                                                                            'batched']
    for row in result['rows']:
        assert row['identical_vs_first'] == 1.0 and row['images_per_s'] > 0
        assert set(row['stages_ms']) == set(speed.STAGES)
    report = open(osp.join(tmp_path, 'collection_stand-in_sam_vit_b_cpu.md')).read()
    assert 'a stand-in SAM at the frames of sam `vit_b`' in report
    assert '| batched | `{"encode_batch": 2}` |' in report
    assert '| one-by-one, batched |' in report  # one stage pass: the same refiner settings
