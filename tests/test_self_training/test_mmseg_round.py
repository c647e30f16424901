# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A self-training round for mmseg, run as docs/self_training.md tells a user
to: mmseg's installed ``tools/train.py`` trains a teacher on labeled label
maps, ``tools/test.py`` with the shipped pseudo-labelling config exports
refined label maps for a folder of unlabeled images, ``tools/train.py`` with
the shipped student config trains on both.  The configs are the shipped ones
made tiny (DeepLabV3+ on ResNet-18 at random init, 128x96 images, two
iterations, the tests' tiny SAM); paths come through ``--cfg-options``."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

from .._tiny import tiny_refiner_config
from ..mm_data import HEIGHT, WIDTH, make_seg_dataset
from ..mm_tools import mm_config, run_tool, shipped_config, tiny_runtime

#: a real training / test run through the tools, seconds each on a 2-core CPU
pytestmark = pytest.mark.slow

PSEUDO_LABEL_CONFIG = ('self_training/'
                       'deeplabv3plus_r50-d8_samrefiner-pseudo-label_voc-unlabeled-512x512.py')
STUDENT_CONFIG = ('self_training/'
                  'deeplabv3plus_r50-d8_4xb4-20k_voc12aug+samrefiner-pseudo-labels-512x512.py')
CLASSES = ('background', ) + SHAPE_KINDS
TINY_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]


def tiny_deeplabv3plus(cfg: Config) -> None:
    num_classes = len(CLASSES)
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = (HEIGHT, WIDTH)
    cfg.data_preprocessor = cfg.model.data_preprocessor
    cfg.model.backbone.depth = 18
    cfg.model.decode_head.update(in_channels=512, channels=16, c1_in_channels=64,
                                 c1_channels=8, num_classes=num_classes)
    cfg.model.auxiliary_head.update(in_channels=256, channels=8, num_classes=num_classes)
    tiny_runtime(cfg)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.train_dataloader.batch_size = 2


def labeled_dataset(root: str) -> dict:
    return dict(type='BaseSegDataset', data_root=root,
                data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
                img_suffix='.png', seg_map_suffix='.png', metainfo=dict(classes=CLASSES),
                pipeline=TINY_PIPELINE)


@pytest.fixture(scope='module')
def mmseg_round(tmp_path_factory, tiny_sam_checkpoint):
    """The round's three commands; returns the paths they wrote."""
    tmp = tmp_path_factory.mktemp('mmseg_round')
    labeled = str(tmp / 'voc')
    make_seg_dataset(labeled, num_images=2, seed=0)
    make_seg_dataset(tmp / 'pool', num_images=3, seed=1)
    unlabeled = str(tmp / 'pool' / 'img_dir')  # 0000.png .. 0002.png, and:
    shutil.rmtree(tmp / 'pool' / 'ann_dir')
    image = cv2.imread(osp.join(unlabeled, '0000.png'))
    cv2.imwrite(osp.join(unlabeled, 'extra.jpg'), image)
    open(osp.join(unlabeled, 'notes.txt'), 'w').write('not an image')
    refiner = Config.fromfile(tiny_refiner_config(tmp, tiny_sam_checkpoint)).refiner

    teacher = Config.fromfile(mm_config(
        'mmseg', 'deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py'))
    tiny_deeplabv3plus(teacher)
    teacher.train_dataloader.dataset = labeled_dataset(labeled)
    teacher.dump(tmp / 'teacher.py')

    pseudo = shipped_config(PSEUDO_LABEL_CONFIG)
    tiny_deeplabv3plus(pseudo)
    pseudo.test_dataloader.dataset.metainfo = dict(classes=CLASSES)
    for transform in pseudo.test_dataloader.dataset.pipeline:
        if transform.type == 'Resize':
            transform.scale = (WIDTH, HEIGHT)
    pseudo.custom_hooks[0].update(refiner=refiner)
    pseudo.dump(tmp / 'pseudo_label.py')

    student = shipped_config(STUDENT_CONFIG)
    tiny_deeplabv3plus(student)
    student.train_dataloader.dataset.datasets[0] = labeled_dataset(labeled)
    student.train_dataloader.dataset.datasets[1].update(pipeline=TINY_PIPELINE,
                                                        metainfo=dict(classes=CLASSES))
    student.dump(tmp / 'student.py')

    work = tmp / 'work_dirs'
    run_tool('mmseg', 'train.py', 'teacher.py', '--work-dir', str(work / 'teacher'), cwd=tmp)
    run_tool('mmseg', 'test.py', 'pseudo_label.py', str(work / 'teacher' / 'iter_2.pth'),
             '--work-dir', str(work / 'pseudo'),
             '--cfg-options', f'test_dataloader.dataset.data_prefix.img_path={unlabeled}',
             cwd=tmp)
    pseudo_labels = str(work / 'pseudo' / 'pseudo_labels')
    student_options = [f'train_dataloader.dataset.datasets.1.data_prefix.img_path={unlabeled}',
                       f'train_dataloader.dataset.datasets.1.data_prefix.seg_map_path='
                       f'{pseudo_labels}']
    run_tool('mmseg', 'train.py', 'student.py', '--work-dir', str(work / 'student'),
             '--cfg-options', *student_options, cwd=tmp)
    return dict(work=work, unlabeled=unlabeled, pseudo_labels=pseudo_labels,
                student_cfg=str(tmp / 'student.py'), student_options=student_options)


def test_the_export_has_one_label_map_per_image_of_the_folder(mmseg_round):
    exported = sorted(n for n in os.listdir(mmseg_round['pseudo_labels']) if n.endswith('.png'))
    assert exported == ['0000.png', '0001.png', '0002.png', 'extra.png']
    for name in exported:
        label_map = cv2.imread(osp.join(mmseg_round['pseudo_labels'], name),
                               cv2.IMREAD_UNCHANGED)
        assert label_map.shape == (HEIGHT, WIDTH) and label_map.dtype == np.uint8
        assert set(np.unique(label_map)) <= set(range(len(CLASSES)))


def test_the_student_trains_on_labeled_plus_pseudo_labeled_images(mmseg_round):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mmsamrefiner  # noqa: F401 - the config's custom_imports
    cfg = Config.fromfile(mmseg_round['student_cfg'])
    cfg.merge_from_dict(dict(option.split('=', 1) for option in mmseg_round['student_options']))
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert [len(d) for d in dataset.datasets] == [2, 4]
    assert len(dataset) == 2 + 4
    assert dataset.datasets[1][3]['data_samples'].gt_sem_seg.data.shape[-2:] == (HEIGHT, WIDTH)
    assert osp.isfile(mmseg_round['work'] / 'student' / 'iter_2.pth')
