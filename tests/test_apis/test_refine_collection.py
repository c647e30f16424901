# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""refine_collection's rules: duplicate ids refused before any work, which
errors are transient, what the summary says."""
import json

import pytest
import torch

from mmsamrefiner.apis import refine_collection, summarize
from mmsamrefiner.apis.refine_collection import is_transient
from mmsamrefiner.io.coarse_masks import AnnotationError, CocoInstances, CollectionError
from mmsamrefiner.io.refined_masks import RefinedCocoWriter
from mmsamrefiner.synthetic.collections import write_coco_collection


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


def test_run_errors_are_transient_input_errors_final():
    assert is_transient(RuntimeError('CUDA out of memory'))
    assert is_transient(torch.cuda.OutOfMemoryError('out of memory'))
    assert is_transient(MemoryError())
    for error in (ValueError('masks have size'), FileNotFoundError('x'), OSError('x'),
                  AnnotationError(3, 'annotation 3: ...'), NotImplementedError()):
        assert not is_transient(error)


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
