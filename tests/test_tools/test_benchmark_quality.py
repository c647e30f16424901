# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/benchmark_quality.py: the semantic cases' diagnosis on hand-made
maps, the decoder count, and the tool end to end on one scene a case."""
import json
import os.path as osp
import sys

import numpy as np
import pytest

from mmsamrefiner import SAMRefiner

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))
import benchmark_quality as bench  # noqa: E402


def squares(*corners, height=100, width=120):
    """(N, H, W) bool 20x20 squares with their top-left ``corners`` (x, y)."""
    masks = np.zeros((len(corners), height, width), bool)
    for mask, (x, y) in zip(masks, corners):
        mask[y:y + 20, x:x + 20] = True
    return masks


def test_split_diagnosis_names_why_objects_share_an_instance():
    # 0 and 1 touch; 2 is 4 px from 1 (grouped with them); 3 is far away
    objects = squares((5, 10), (25, 10), (49, 10), (95, 75))
    coarse = objects.any(0)
    fragment_count, instance_count, causes = bench.split_diagnosis(objects, coarse)
    assert (fragment_count, instance_count) == (3, 2)
    assert causes == ['touching', 'touching', 'grouped', 'alone']
    # an object the coarse mask misses has no cause; specks are no fragments
    coarse = objects[0].copy()
    coarse[0, 0] = True
    assert bench.split_diagnosis(objects[:2], coarse) == (1, 1, ['alone', None])
    assert bench.split_diagnosis(objects, np.zeros_like(coarse)) == (0, 0, [None] * 4)


def test_lost_objects_need_coarse_recall_over_half_and_refined_under_a_fifth():
    objects = squares((5, 10), (40, 10), (80, 10))
    coarse = objects.any(0)
    coarse[10:30, 80:91] = False  # object 2: coarse recall 0.45
    refined = np.zeros_like(coarse)
    refined[10:30, 5:25] = True
    refined[10:13, 40:60] = True  # object 1: refined recall 0.15
    refined[10:30, 80:90] = True
    assert bench.lost_objects(objects, coarse, refined).tolist() == [False, True, False]
    refined[10:14, 40:60] = True  # recall 0.2: not lost
    assert not bench.lost_objects(objects, coarse, refined).any()


def test_decoder_count_counts_calls_and_masks(tiny_sam, scene):
    image, masks = scene
    refiner = SAMRefiner(tiny_sam, iters=2, max_batch=1)
    count = bench.DecoderCount(refiner)
    refiner.refine(image, masks)
    assert (count.calls, count.masks) == (4, 4)  # 2 rounds of 2 masks, one a call
    refiner.max_batch = 64
    refiner.refine(image, masks)
    assert (count.calls, count.masks) == (6, 8)


@pytest.mark.slow
def test_the_tool_writes_a_semantic_row_per_case(tmp_path):
    args = bench.parse_args(['--scenes', '1', '--case-scenes', '1', '--adapt-scenes', '0',
                             '--objects', '2', '--height', '96', '--width', '128',
                             '--out-dir', str(tmp_path)])
    table, accuracy, semantic = bench.run(args)
    assert list(semantic) == ['semantic (random scenes)'] + [c for c in bench.CASES
                                                             if bench.CASES[c]]
    for case, rows in semantic.items():
        assert list(rows) == list(bench.STM_ROWS)
        authors, default = rows["authors' STM"], rows['residual STM (default)']
        assert authors['maps'] == 1 and authors['objects'] == default['objects'] > 0
        assert authors['decoder_calls'] == 5 <= default['decoder_calls']  # 5 rounds
        assert authors['lost'] == sum(authors[f'lost_{c}'] for c in bench.LOST_CAUSES)
    # the default SAMRefiner row's semantic kind is the residual STM's random maps
    assert table['SAMRefiner']['semantic']['miou'] == pytest.approx(
        semantic['semantic (random scenes)']['residual STM (default)']['miou'])
    lines = bench.semantic_markdown(semantic).splitlines()
    assert sum(line.startswith('| 4 touching |') for line in lines) == 2
    json.dumps(semantic)
