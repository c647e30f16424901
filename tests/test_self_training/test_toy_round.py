# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The toy round of docs/self_training.md runs as written: its commands
(generated data, mmdet's installed ``tools/train.py`` / ``tools/test.py`` with
the shipped toy configs and the toy SAM) run in an empty folder with a
``python`` that is this interpreter on this tree, and write the pseudo-labels
and the student the page says."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

#: a real round: two trainings and a test run through mmdet's tools, about
#: two minutes on a 2-core CPU
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'self_training.md')
HEIGHT, WIDTH = 288, 384  # tools/make_synthetic_collection.py's default size


def doc_snippet(name: str) -> str:
    """The ```bash block after ``<!-- snippet: name -->`` in the page."""
    text = open(DOC, encoding='utf-8').read()
    match = re.search(r'<!-- snippet: ' + re.escape(name) + r' -->\s*```bash\n(.*?)```', text,
                      re.S)
    assert match, f'docs/self_training.md has no bash snippet {name!r}'
    return match.group(1)


@pytest.fixture(scope='module')
def toy_round(tmp_path_factory):
    """Runs the page's commands; returns the folder they ran in and their output."""
    tmp = tmp_path_factory.mktemp('toy_round')
    bin_dir, cwd = tmp / 'bin', tmp / 'user'
    bin_dir.mkdir()
    cwd.mkdir()
    python = bin_dir / 'python'
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', PYTHONPATH=ROOT,
               OMP_NUM_THREADS='1')  # one thread: the machine's other jobs keep theirs
    done = subprocess.run(['bash', '-e', '-c', doc_snippet('toy-round-mmdet')], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=1200)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return cwd, output


def test_the_export_pseudo_labels_every_unlabeled_image(toy_round):
    cwd, output = toy_round
    assert 'Load checkpoint from work_dirs/toy_round/teacher/epoch_1.pth' in output
    coco = json.load(open(cwd / 'work_dirs/toy_round/pseudo/pseudo_labels/instances.json'))
    assert [(im['id'], im['file_name'], im['height'], im['width']) for im in coco['images']] == [
        (i + 1, f'{i:04d}.png', HEIGHT, WIDTH) for i in range(20)]
    assert [c['name'] for c in coco['categories']] == list(SHAPE_KINDS)
    annotations = coco['annotations']
    assert annotations, 'the teacher kept no instance'
    category_ids = {c['id'] for c in coco['categories']}
    for annotation in annotations:
        assert annotation['category_id'] in category_ids and 1 <= annotation['image_id'] <= 20
        assert annotation['segmentation']['size'] == [HEIGHT, WIDTH]  # RLE, the image's size
        assert annotation['score'] >= 0.05  # the teacher's test_cfg.rcnn.score_thr
    per_image = [sum(a['image_id'] == i + 1 for a in annotations) for i in range(20)]
    assert max(per_image) <= 10  # the teacher's max_per_img


def test_the_student_trains_on_labeled_plus_pseudo_labeled_scenes(toy_round):
    cwd, _ = toy_round
    coco = json.load(open(cwd / 'work_dirs/toy_round/pseudo/pseudo_labels/instances.json'))
    pseudo_labeled = len({a['image_id'] for a in coco['annotations']})
    iterations = (20 + pseudo_labeled + 1) // 2  # batches of 2, one aspect ratio
    (log, ) = glob.glob(str(cwd / 'work_dirs/toy_round/student/*/*.log'))
    assert f'Epoch(train) [1][{iterations}/{iterations}]' in open(log).read()
    checkpoint = torch.load(cwd / 'work_dirs/toy_round/student/epoch_1.pth', map_location='cpu',
                            weights_only=False)  # written by this test's own run
    assert tuple(checkpoint['meta']['dataset_meta']['classes']) == SHAPE_KINDS
    assert checkpoint['meta']['epoch'] == 1
    logits = checkpoint['state_dict']['roi_head.mask_head.conv_logits.weight']
    assert logits.shape[0] == len(SHAPE_KINDS)
    teacher = torch.load(cwd / 'work_dirs/toy_round/teacher/epoch_1.pth', map_location='cpu',
                         weights_only=False)
    assert not torch.equal(teacher['state_dict']['roi_head.mask_head.conv_logits.weight'],
                           logits)
