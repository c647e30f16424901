# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/benchmark_pseudo_labels.py --quick end to end: every row, label
quality where it is known, re-runs that reuse finished steps and redo only
what a changed setting touches."""
import json
import os.path as osp

import pytest

from .tool_modules import load_tool

bench = load_tool('benchmark_pseudo_labels')

#: real (tiny) Mask R-CNN and FCN trainings through the tool
pytestmark = pytest.mark.slow

KINDS = ['box', 'semantic']  # one kind per model keeps the test short


def run(out_dir, *options):
    return bench.run(bench.parse_args(['--quick', '--out-dir', str(out_dir), '--kinds', *KINDS,
                                       *options]))


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('bench')
    return out_dir, run(out_dir)


def test_the_table_has_a_row_per_kind_and_label_set(first_run):
    out_dir, report = first_run
    rows = {(row['kind'], row['labels']): row for row in report['rows']}
    assert list(rows) == [(kind, labels) for kind in KINDS
                          for labels in ('coarse', 'refined', 'true')]
    table = open(osp.join(out_dir, 'results.md')).read().splitlines()
    assert len(table) == 2 + len(rows)
    for line, ((kind, labels), row) in zip(table[2:], rows.items()):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert cells[:2] == [kind, labels]
        # each model is scored by its own metric, and the table prints what was measured
        if kind == 'box':
            assert row['model'] == 'mask-rcnn' and row['test_miou'] is None
            measured = {4: row['mask_ap'], 5: row['mask_ap50']}
        else:
            assert row['model'] == 'fcn' and row['mask_ap'] is None
            measured = {6: row['test_miou']}
        for column, value in measured.items():
            assert isinstance(value, float) and cells[column] == f'{100 * value:.1f}'
        assert row['train_minutes'] > 0
    saved = json.load(open(osp.join(out_dir, 'results.json')))
    assert saved['rows'] == report['rows']


def test_refined_labels_are_closer_to_the_truth_than_coarse_ones(first_run):
    """The labels each model trains on are scored against the true ones:
    refinement (tools/refine.py with the toy SAM) must raise that score
    clearly (quick run: box 0.46 -> 0.89, semantic 0.47 -> 0.75)."""
    _, report = first_run
    rows = {(row['kind'], row['labels']): row for row in report['rows']}
    for kind in KINDS:
        coarse, refined = rows[kind, 'coarse']['label_miou'], rows[kind, 'refined']['label_miou']
        assert refined > coarse + 0.15, (kind, coarse, refined)
        assert rows[kind, 'true']['label_miou'] == 1.0


def test_each_step_has_its_folder_record_and_the_config_it_trained(first_run):
    out_dir, report = first_run
    assert report['reused'] == []
    for name in report['ran']:
        record = json.load(open(osp.join(out_dir, name, 'step.json')))
        assert record['name'] == name and record['key'] and 'result' in record
    assert osp.exists(osp.join(out_dir, 'train-mask-rcnn-box-refined', 'config.py'))
    assert osp.exists(osp.join(out_dir, 'refined-box', 'refined.json'))  # tools/refine.py's
    assert len(report['ran']) == 1 + 2 * 2 + 2 + 2 * 2


def test_a_rerun_reuses_every_finished_step_and_a_changed_setting_redoes_its_dependents(
        first_run):
    out_dir, first = first_run
    again = run(out_dir)
    assert again['ran'] == [] and sorted(again['reused']) == sorted(first['ran'])
    assert again['rows'] == first['rows']
    # --amount shapes the CAM-like labels of `semantic` only
    changed = run(out_dir, '--amount', '3')
    assert 'coarse-semantic' in changed['ran']
    assert set(changed['ran']) <= {'coarse-semantic', 'refined-semantic',
                                   'train-fcn-semantic-coarse', 'train-fcn-semantic-refined'}
    assert {'data', 'coarse-box', 'refined-box', 'train-mask-rcnn-true', 'train-fcn-true',
            'train-mask-rcnn-box-coarse', 'train-mask-rcnn-box-refined'} <= set(changed['reused'])
    # a model's schedule: its trainings, nothing else
    longer = run(out_dir, '--amount', '3', '--iters', '3')
    assert sorted(longer['ran']) == ['train-mask-rcnn-box-coarse', 'train-mask-rcnn-box-refined',
                                     'train-mask-rcnn-true']
    longer = run(out_dir, '--amount', '3', '--iters', '3', '--seg-iters', '3')
    assert sorted(longer['ran']) == ['train-fcn-semantic-coarse', 'train-fcn-semantic-refined',
                                     'train-fcn-true']


def test_an_interrupted_step_is_redone(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, 'train_and_test', interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    report = run(tmp_path)
    assert report['reused'] == ['data', 'coarse-box', 'refined-box', 'coarse-semantic',
                                'refined-semantic']
    assert all(name.startswith('train-') for name in report['ran'])
