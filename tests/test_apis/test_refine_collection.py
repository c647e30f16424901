# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""refine_collection's rules: duplicate ids refused before any work, which
errors are final (those of the input) and which are retried (all others),
what the summary says."""
import json
import os.path as osp
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pytest
import torch

from mmsamrefiner.apis import refine_collection, summarize
from mmsamrefiner.mask_io.coarse_masks import CocoInstances, CollectionError
from mmsamrefiner.mask_io.refined_masks import RefinedCocoWriter
from mmsamrefiner.refiner.inputs import load_rgb_image
from mmsamrefiner.synthetic.coco_collection import write_coco_collection


def test_duplicate_annotation_ids_are_refused_before_any_work(tmp_path):
    ann_file = write_coco_collection(str(tmp_path), num_images=2)
    coco = json.load(open(ann_file))
    coco['annotations'][-1]['id'] = coco['annotations'][0]['id']
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    source = CocoInstances(ann_file, str(tmp_path / 'images'))
    writer = RefinedCocoWriter(str(tmp_path / 'out.json'), source.coco)
    with pytest.raises(CollectionError, match='used more than once'):
        refine_collection(None, source, writer)  # no refiner needed to refuse


class FakeRefiner:
    """Refines nothing (returns the coarse masks); records which images it was
    given and raises ``errors[key]`` for the image of ``key``."""

    def __init__(self, keys_by_image: dict, errors: Optional[dict] = None):
        self.keys_by_image, self.errors, self.calls = keys_by_image, errors or {}, []

    def fingerprint(self):
        return 'fake'

    def refine(self, image, masks, image_embedding=None):
        key = self.keys_by_image[image.tobytes()]
        self.calls.append(key)
        if key in self.errors:
            raise self.errors[key]
        return SimpleNamespace(masks=masks, scores=np.ones(len(masks), np.float32),
                               empty=np.zeros(len(masks), bool))


def coco_collection(tmp_path, num_images):
    ann_file = write_coco_collection(str(tmp_path / 'coarse'), num_images=num_images, seed=5)
    img_dir = str(tmp_path / 'coarse' / 'images')
    source = CocoInstances(ann_file, img_dir)
    keys_by_image = {load_rgb_image(item.img_path).tobytes(): item.key
                     for item in source.items()}
    return ann_file, img_dir, keys_by_image


def run_once(ann_file, img_dir, out, refiner):
    source = CocoInstances(ann_file, img_dir)
    writer = RefinedCocoWriter(str(out), source.coco)
    summary = refine_collection(refiner, source, writer, show_progress=False)
    return summary, {r['key']: r for r in writer.records.all()}


def test_out_of_memory_fails_one_image_transiently_and_a_rerun_refines_exactly_it(tmp_path):
    ann_file, img_dir, keys = coco_collection(tmp_path, 3)
    out = tmp_path / 'refined.json'
    oom = FakeRefiner(keys, {'2': RuntimeError('CUDA out of memory. Tried to allocate 2 GiB')})
    summary, records = run_once(ann_file, img_dir, out, oom)
    assert oom.calls == ['1', '2', '3']
    assert summary['failed'] == [('2', 'RuntimeError: CUDA out of memory. Tried to allocate 2 GiB')]
    assert {k: (r['status'], r['transient']) for k, r in records.items()} == {
        '1': ('refined', False), '2': ('failed', True), '3': ('refined', False)}
    text = summarize(list(records.values()))
    assert '1 of them to be retried by the next run' in text
    assert '1 image(s) failed transiently' in text and 'run the same command again' in text

    fixed = FakeRefiner(keys)
    summary, records = run_once(ann_file, img_dir, out, fixed)
    assert fixed.calls == ['2']  # exactly the failed image, nothing else
    assert summary['skipped'] == 2 and summary['redo'] == {'failed transiently before': 1}
    assert summary['failed'] == [] and all(r['status'] == 'refined' for r in records.values())
    again = FakeRefiner(keys)
    assert run_once(ann_file, img_dir, out, again)[0]['skipped'] == 3 and again.calls == []


@pytest.mark.parametrize('error', [KeyError('a bug'), ValueError('raised inside the refiner'),
                                   OSError('a worker died'), NotImplementedError(),
                                   MemoryError(), torch.cuda.OutOfMemoryError('out of memory')])
def test_whatever_the_refiner_raises_once_the_input_is_checked_is_retried(tmp_path, error):
    ann_file, img_dir, keys = coco_collection(tmp_path, 2)
    out = tmp_path / 'refined.json'
    _, records = run_once(ann_file, img_dir, out, FakeRefiner(keys, {'1': error}))
    assert (records['1']['status'], records['1']['transient']) == ('failed', True)
    fixed = FakeRefiner(keys)
    run_once(ann_file, img_dir, out, fixed)
    assert fixed.calls == ['1']


def test_input_errors_are_final_until_the_input_changes(tmp_path):
    ann_file, img_dir, keys = coco_collection(tmp_path, 4)
    coco = json.load(open(ann_file))
    anns = {image_id: next(a for a in coco['annotations'] if a['image_id'] == image_id)
            for image_id in (1, 2)}
    anns[1]['segmentation'] = [[10, 10, 20, 20]]  # a polygon of two points
    del anns[2]['id']
    coco['images'][2]['height'] += 1  # masks of another size than the image
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    with open(osp.join(img_dir, coco['images'][3]['file_name']), 'wb') as f:
        f.write(b'not an image')
    out = tmp_path / 'refined.json'
    refiner = FakeRefiner(keys)
    summary, records = run_once(ann_file, img_dir, out, refiner)
    assert refiner.calls == []  # no input reached the refiner
    assert {k: (r['status'], r['transient']) for k, r in records.items()} == {
        k: ('failed', False) for k in '1234'}
    assert records['1']['ann_id'] == anns[1]['id'] and 'AnnotationError' in records['1']['reason']
    assert 'AnnotationError' in records['2']['reason']
    assert 'masks have size (H, W)=(97, 128)' in records['3']['reason']
    assert 'cannot be read as an image' in records['4']['reason']
    assert '[fix the input and run again]' in summarize(list(records.values()))
    again = FakeRefiner(keys)
    summary, _ = run_once(ann_file, img_dir, out, again)
    assert summary['skipped'] == 4 and again.calls == []  # final: not retried


def test_a_size_mismatch_is_an_input_error_with_batched_encoding_too(tmp_path):
    ann_file, img_dir, keys = coco_collection(tmp_path, 2)
    coco = json.load(open(ann_file))
    coco['images'][0]['width'] -= 1
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    refiner = FakeRefiner(keys)
    refiner.encode_images = lambda images: [
        SimpleNamespace(original_size=image.shape[:2], image=image) for image in images]
    refiner.refine = lambda image, masks, image_embedding=None: FakeRefiner.refine(
        refiner, image_embedding.image, masks)
    source = CocoInstances(ann_file, img_dir)
    writer = RefinedCocoWriter(str(tmp_path / 'refined.json'), source.coco)
    refine_collection(refiner, source, writer, show_progress=False, encode_batch=2)
    records = {r['key']: r for r in writer.records.all()}
    assert (records['1']['status'], records['1']['transient']) == ('failed', False)
    assert 'masks have size (H, W)=(96, 127)' in records['1']['reason']
    assert records['2']['status'] == 'refined' and refiner.calls == ['2']


def test_summary_says_which_failures_are_retried():
    common = dict(num_masks=1, num_empty=0, seconds=0.1, img_path='im.png')
    records = [dict(common, key='1', status='refined'),
               dict(common, key='2', status='failed', reason='RuntimeError: oom',
                    transient=True),
               dict(common, key='3', status='failed', reason='ValueError: bad', transient=False)]
    text = summarize(records)
    assert 'images: 3 (1 refined, 2 failed and passed through unchanged, 1 of them to be ' \
        'retried by the next run)' in text
    assert 'failed: 2 (im.png): RuntimeError: oom [transient: retried by the next run]' in text
    assert 'failed: 3 (im.png): ValueError: bad [fix the input and run again]' in text
