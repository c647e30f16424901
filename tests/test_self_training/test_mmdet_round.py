# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A self-training round for mmdet, run as docs/self_training.md tells a user
to: mmdet's installed ``tools/train.py`` trains a teacher on labeled data,
``tools/test.py`` with the shipped pseudo-labelling config exports refined
COCO pseudo-labels for a folder of unlabeled images, ``tools/train.py`` with
the shipped student config trains on both.  The configs are the shipped ones
made tiny (ResNet-18 Mask R-CNN at random init, 128x96 images, one epoch, the
tests' tiny SAM); paths come through ``--cfg-options``."""
import json
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
from mmengine.config import Config

from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

from .._tiny import tiny_refiner_config
from ..mm_data import HEIGHT, WIDTH, make_coco_dataset
from ..mm_tools import mm_config, run_tool, shipped_config, tiny_runtime
from ..readme_snippets import snippet_text

#: a real training / test run through the tools, seconds each on a 2-core CPU
pytestmark = pytest.mark.slow

PSEUDO_LABEL_CONFIG = ('self_training/'
                       'mask-rcnn_r50_fpn_samrefiner-pseudo-label_coco-unlabeled2017.py')
STUDENT_CONFIG = 'self_training/mask-rcnn_r50_fpn_1x_coco+samrefiner-pseudo-labels.py'
EXPORT_SCORE_THR = 0.2  # the tiny teacher scores 0.19-0.21: some in, some out
TINY_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs'),
]


def tiny_mask_rcnn(cfg: Config) -> None:
    cfg.model.backbone.update(depth=18, init_cfg=None)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    cfg.model.roi_head.bbox_head.num_classes = len(SHAPE_KINDS)
    cfg.model.roi_head.mask_head.num_classes = len(SHAPE_KINDS)
    cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=3)
    tiny_runtime(cfg)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
    cfg.train_dataloader.batch_size = 1  # one iteration per image: the log counts them


def labeled_dataset(root: str) -> dict:
    return dict(type='CocoDataset', data_root=root, ann_file='instances.json',
                data_prefix=dict(img='images/'), metainfo=dict(classes=SHAPE_KINDS),
                filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=TINY_PIPELINE)


@pytest.fixture(scope='module')
def mmdet_round(tmp_path_factory, tiny_sam_checkpoint):
    """The round's three commands; returns the paths and outputs they gave."""
    tmp = tmp_path_factory.mktemp('mmdet_round')
    labeled = str(tmp / 'coco')
    make_coco_dataset(labeled, num_images=2, seed=0)
    make_coco_dataset(tmp / 'pool', num_images=3, seed=1)
    unlabeled = str(tmp / 'pool' / 'images')  # 0000.png .. 0002.png, and:
    shutil.copy(osp.join(unlabeled, '0000.png'), osp.join(unlabeled, 'extra.PNG'))
    open(osp.join(unlabeled, 'notes.txt'), 'w').write('not an image')
    refiner = Config.fromfile(tiny_refiner_config(tmp, tiny_sam_checkpoint)).refiner

    teacher = Config.fromfile(mm_config('mmdet', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'))
    tiny_mask_rcnn(teacher)
    teacher.train_dataloader.dataset = labeled_dataset(labeled)
    teacher.dump(tmp / 'teacher.py')

    pseudo = shipped_config(PSEUDO_LABEL_CONFIG)
    tiny_mask_rcnn(pseudo)
    pseudo.test_dataloader.dataset.metainfo = dict(classes=SHAPE_KINDS)
    for transform in pseudo.test_dataloader.dataset.pipeline:
        if transform.type == 'Resize':
            transform.scale = (WIDTH, HEIGHT)
    pseudo.custom_hooks[0].update(refiner=refiner, score_thr=0.0)
    pseudo.dump(tmp / 'pseudo_label.py')

    student = shipped_config(STUDENT_CONFIG)
    tiny_mask_rcnn(student)
    student.train_dataloader.dataset.datasets[0] = labeled_dataset(labeled)
    student.train_dataloader.dataset.datasets[1].update(pipeline=TINY_PIPELINE,
                                                        metainfo=dict(classes=SHAPE_KINDS))
    student.dump(tmp / 'student.py')

    work = tmp / 'work_dirs'
    run_tool('mmdet', 'train.py', 'teacher.py', '--work-dir', str(work / 'teacher'), cwd=tmp)
    teacher_checkpoint = str(work / 'teacher' / 'epoch_1.pth')
    run_tool('mmdet', 'test.py', 'pseudo_label.py', teacher_checkpoint,
             '--work-dir', str(work / 'pseudo'), '--out', str(tmp / 'predictions.pkl'),
             '--cfg-options', f'test_dataloader.dataset.data_root={unlabeled}',
             f'custom_hooks.0.export_score_thr={EXPORT_SCORE_THR}', cwd=tmp)
    pseudo_labels = str(work / 'pseudo' / 'pseudo_labels' / 'instances.json')
    student_options = [f'train_dataloader.dataset.datasets.1.ann_file={pseudo_labels}',
                       f'train_dataloader.dataset.datasets.1.data_prefix.img={unlabeled}/']
    log = run_tool('mmdet', 'train.py', 'student.py', '--work-dir', str(work / 'student'),
                   '--cfg-options', *student_options, cwd=tmp)
    return dict(tmp=tmp, work=work, unlabeled=unlabeled, pseudo_labels=pseudo_labels,
                predictions=pickle.load(open(tmp / 'predictions.pkl', 'rb')),
                student_cfg=str(tmp / 'student.py'), student_options=student_options,
                student_log=log)


def test_the_export_names_every_image_of_the_folder_with_stable_ids(mmdet_round):
    coco = json.load(open(mmdet_round['pseudo_labels']))
    assert [(im['id'], im['file_name']) for im in coco['images']] == [
        (1, '0000.png'), (2, '0001.png'), (3, '0002.png'), (4, 'extra.PNG')]
    assert all((im['height'], im['width']) == (HEIGHT, WIDTH) for im in coco['images'])
    assert [c['name'] for c in coco['categories']] == list(SHAPE_KINDS)


def test_the_export_holds_exactly_the_predictions_scored_at_least_the_threshold(mmdet_round):
    coco = json.load(open(mmdet_round['pseudo_labels']))
    exported = sorted((a['image_id'], round(a['score'], 5)) for a in coco['annotations'])
    predicted = sorted(
        (p['img_id'], round(float(s), 5)) for p in mmdet_round['predictions']
        for s in p['pred_instances']['scores'] if s >= EXPORT_SCORE_THR)
    assert exported == predicted
    all_scores = np.concatenate([p['pred_instances']['scores'].numpy()
                                 for p in mmdet_round['predictions']])
    assert len(all_scores) == 4 * 3  # max_per_img instances for each of the 4 images
    assert 0 < len(exported) < len(all_scores)  # the filter kept some, left out some


def test_the_student_trains_on_labeled_plus_pseudo_labeled_images(mmdet_round):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    import mmsamrefiner  # noqa: F401 - the config's custom_imports
    cfg = Config.fromfile(mmdet_round['student_cfg'])
    cfg.merge_from_dict(dict(option.split('=', 1) for option in mmdet_round['student_options']))
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    coco = json.load(open(mmdet_round['pseudo_labels']))
    pseudo_labeled = {a['image_id'] for a in coco['annotations']}  # the rest: no pseudo-label
    assert [len(d) for d in dataset.datasets] == [2, len(pseudo_labeled)]
    assert len(dataset) == 2 + len(pseudo_labeled)
    assert f'Epoch(train) [1][{len(dataset)}/{len(dataset)}]' in mmdet_round['student_log']
    assert osp.isfile(mmdet_round['work'] / 'student' / 'epoch_1.pth')


def test_tools_test_reads_the_teachers_checkpoint_with_the_readme_hook_lines(
        mmdet_round, tiny_sam_checkpoint):
    """mmdet's ``tools/test.py`` reads the checkpoint its ``tools/train.py``
    wrote (mmengine's message hub inside: weights-only loading under torch >=
    2.6 refuses it alone) with the README's hook lines as printed, the tiny
    SAM put in their refiner."""
    tmp = mmdet_round['tmp']
    refiner = Config.fromfile(tiny_refiner_config(tmp, tiny_sam_checkpoint)).refiner.to_dict()
    labeled = str(tmp / 'coco')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(WIDTH, HEIGHT),
                                                       keep_ratio=True),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]
    (tmp / 'readme_hook.py').write_text(
        "_base_ = './teacher.py'\n" + snippet_text('mmdet-hook')
        + f"custom_hooks[0]['refiner'] = {refiner!r}\n"
        + f'test_dataloader = dict(dataset=dict(data_root={labeled + "/"!r}, '
        f"ann_file='instances.json', data_prefix=dict(img='images/'), "
        f'metainfo=dict(classes={tuple(SHAPE_KINDS)!r}), pipeline={pipeline!r}))\n'
        + f'test_evaluator = dict(ann_file={labeled + "/instances.json"!r})\n')
    output = run_tool('mmdet', 'test.py', 'readme_hook.py',
                      str(mmdet_round['work'] / 'teacher' / 'epoch_1.pth'),
                      '--work-dir', str(tmp / 'work_dirs' / 'readme_hook'), cwd=tmp)
    assert 'Load checkpoint from' in output and 'segm_mAP' in output
    assert 'SAMRefinerHook' in output
