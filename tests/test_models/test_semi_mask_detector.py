# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Online semi-supervised instance segmentation with refined masks: the shipped
SemiMaskDetector config trains a (tiny) Mask R-CNN student whose unsupervised
mask loss is computed on the teacher's refined masks, projected into the
student's view; models whose student cannot learn masks are refused at start."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from mmsamrefiner.engine import teacher as teacher_module
from mmsamrefiner.models.mask_projection import project_masks
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS

from ..mm_data import make_coco_dataset

CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'configs', 'mmdet',
                  'semi-mask-detector_mask-rcnn_r50_fpn_180k_semi-0.1-coco_samrefiner.py')


def tiny_detector(detector):
    """The config's Mask R-CNN, made tiny: ResNet-18 without pretrained
    weights, the generated scenes' classes, every prediction kept."""
    detector.backbone.update(depth=18, init_cfg=None)
    detector.neck.in_channels = [64, 128, 256, 512]
    detector.roi_head.bbox_head.num_classes = len(SHAPE_KINDS)
    detector.roi_head.mask_head.num_classes = len(SHAPE_KINDS)
    detector.test_cfg.rcnn.update(score_thr=0.0, max_per_img=3)
    return detector


def small_scales(node):
    """Every RandomResize of the pipelines at the tiny images' scale."""
    if isinstance(node, dict):
        if node.get('type') == 'RandomResize':
            node['scale'] = [(128, 96), (160, 120)]
        for value in node.values():
            small_scales(value)
    elif isinstance(node, list):
        for value in node:
            small_scales(value)


def semi_cfg(tmp_path, tiny_sam_cfg, model_type='SemiMaskDetector'):
    cfg = Config.fromfile(CONFIG)
    make_coco_dataset(tmp_path / 'labeled', num_images=2, seed=0)
    make_coco_dataset(tmp_path / 'unlabeled', num_images=2, seed=10)
    tiny_detector(cfg.model.detector)
    cfg.model.type = model_type
    cfg.model.semi_train_cfg.cls_pseudo_thr = 0.0  # random-init teachers score low
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    for dataset, root in ((labeled, 'labeled'), (unlabeled, 'unlabeled')):
        dataset.update(data_root=str(tmp_path / root), ann_file='instances.json',
                       data_prefix=dict(img='images/'), metainfo=dict(classes=SHAPE_KINDS))
    labeled.filter_cfg = dict(filter_empty_gt=True, min_size=8)
    small_scales(cfg.train_dataloader)
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.sampler.update(batch_size=2, source_ratio=[1, 1])
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=1000)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader',
                'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1000
    cfg.custom_hooks[0].refiner.update(sam=tiny_sam_cfg, iters=1)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.mark.slow
def test_two_iterations_train_the_student_on_refined_projected_masks(tmp_path, tiny_sam_cfg,
                                                                     monkeypatch):
    seen = dict(teacher=[], student=[], losses=[])
    refine_teacher = teacher_module.TeacherMaskRefiner.__call__

    def spy_refine(self, detector, inputs, results):
        raw = [r.pred_instances.masks.clone() for r in results]
        refine_teacher(self, detector, inputs, results)
        seen['teacher'].extend((r.metainfo, m, r.pred_instances.masks.clone())
                               for r, m in zip(results, raw))

    monkeypatch.setattr(teacher_module.TeacherMaskRefiner, '__call__', spy_refine)
    runner = Runner.from_cfg(semi_cfg(tmp_path, tiny_sam_cfg))
    model = runner.model
    loss_by_pseudo = model.loss_by_pseudo_instances

    def spy_loss(inputs, samples, info=None):
        seen['student'].extend(copy.deepcopy(s) for s in samples)
        losses = loss_by_pseudo(inputs, samples, info)
        seen['losses'].append({k: v for k, v in losses.items() if k == 'unsup_loss_mask'})
        return losses

    monkeypatch.setattr(model, 'loss_by_pseudo_instances', spy_loss)
    runner.train()

    hook = runner.hooks[[type(h).__name__ for h in runner.hooks].index('SAMRefinerHook')]
    assert hook._teacher_refiner is model.pseudo_mask_refiner
    assert hook._teacher_refiner.num_images == 2  # one unlabeled image per iteration
    assert hook._teacher_refiner.num_refined > 0
    assert len(seen['teacher']) == len(seen['student']) == 2
    assert any((raw != refined).any() for _, raw, refined in seen['teacher'])
    for (teacher_meta, _, refined), student in zip(seen['teacher'], seen['student']):
        # what the student learns: the refined masks, teacher view -> original -> student view
        original = project_masks(refined, np.linalg.inv(teacher_meta['homography_matrix']),
                                 teacher_meta['ori_shape'])
        want = project_masks(original, student.homography_matrix, student.img_shape)
        masks = student.gt_instances.masks
        assert type(masks).__name__ == 'BitmapMasks'
        assert (masks.height, masks.width) == tuple(student.img_shape)
        np.testing.assert_array_equal(masks.to_ndarray().astype(bool), want.numpy())
    for losses in seen['losses']:
        assert torch.isfinite(losses['unsup_loss_mask']) and losses['unsup_loss_mask'] > 0
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert "SAMRefinerHook: refining the teacher's pseudo-masks" in log
    assert 'unsup_loss_mask' in log


@pytest.mark.slow
def test_soft_teacher_is_refused_when_training_starts(tmp_path, tiny_sam_cfg):
    cfg = semi_cfg(tmp_path, tiny_sam_cfg, 'SoftTeacher')
    cfg.model.semi_train_cfg.update(rpn_pseudo_thr=0.9, reg_pseudo_thr=0.02, jitter_times=2,
                                    jitter_scale=0.06)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(TypeError, match='no effect on SoftTeacher: it trains its student on '
                       "pseudo-boxes only.*type='SemiMaskDetector'"):
        runner.train()
    assert runner.iter == 0


def test_models_that_carry_no_masks_to_the_student_are_refused():
    from mmdet.models.detectors import SemiBaseDetector
    from mmdet.utils import register_all_modules
    from mmengine.hub import get_config
    from mmengine.registry import DefaultScope

    from mmsamrefiner.engine.teacher import attach_mask_refiner
    from mmsamrefiner.models.semi_mask_detector import SemiMaskDetector

    with pytest.raises(TypeError, match='semi-supervised detector.*got Linear'):
        attach_mask_refiner(torch.nn.Linear(1, 1), source=None)
    register_all_modules(init_default_scope=False)
    mask_rcnn = tiny_detector(get_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py').model)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = SemiBaseDetector(detector=mask_rcnn, semi_train_cfg=dict(),
                                 semi_test_cfg=dict())
    with pytest.raises(TypeError, match="no effect on SemiBaseDetector: it moves only the "
                       "teacher's boxes.*type='SemiMaskDetector'"):
        attach_mask_refiner(model, source=None)
    assert not hasattr(model, 'pseudo_mask_refiner')

    detector = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py').model
    detector.backbone.update(depth=18, init_cfg=None)
    detector.neck.in_channels = [64, 128, 256, 512]
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(TypeError, match='predicts masks.*no mask head'):
            SemiMaskDetector(detector=detector, semi_train_cfg=dict(), semi_test_cfg=dict())


def test_the_teacher_refiner_refines_in_the_teacher_frame_against_its_input(tiny_sam_cfg):
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.hub import get_config
    from mmengine.registry import DefaultScope

    from mmsamrefiner import SAMRefinerHook
    from mmsamrefiner.models.semi_mask_detector import SemiMaskDetector
    from mmsamrefiner.synthetic import make_scene

    register_all_modules(init_default_scope=False)
    detector = tiny_detector(get_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py').model)
    preprocessor = detector.pop('data_preprocessor')
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = SemiMaskDetector(detector=detector, data_preprocessor=preprocessor,
                                 semi_train_cfg=dict(), semi_test_cfg=dict())
    model.eval()
    height, width = 96, 128
    image_bgr = make_scene(seed=3, height=height, width=width).image[..., ::-1].copy()
    data = model.data_preprocessor(dict(
        inputs=[torch.from_numpy(image_bgr).permute(2, 0, 1)],
        data_samples=[DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), scale_factor=(1.0, 1.0),
            homography_matrix=np.eye(3, dtype=np.float32)))]), False)
    inputs, samples = data['inputs'], data['data_samples']

    images, order = teacher_module.teacher_input_images(model, inputs)
    assert order == 'rgb'  # mmdet's preprocessor converted BGR -> RGB
    np.testing.assert_array_equal(images[0], image_bgr[..., ::-1])  # exactly undone

    raw, _ = model.get_pseudo_instances(inputs, copy.deepcopy(samples))
    hook = SAMRefinerHook(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg, iters=2),
                          refine_pseudo_labels=True)
    attached = teacher_module.attach_mask_refiner(model, hook)
    refined, _ = model.get_pseudo_instances(inputs, copy.deepcopy(samples))
    raw_masks, refined_masks = raw[0].gt_instances.masks, refined[0].gt_instances.masks
    assert refined_masks.shape == raw_masks.shape == (3, height, width)
    expected = hook.refiner().refine(images[0], raw_masks.numpy()).masks
    np.testing.assert_array_equal(refined_masks.numpy(), expected)
    assert (refined_masks != raw_masks).any()
    assert (attached.num_images, attached.num_refined) == (1, 3)


def test_a_teacher_that_predicts_nothing_gives_the_student_no_pseudo_instances(tiny_sam_cfg):
    """mmdet's own empty prediction (no box over the teacher's score_thr:
    (0, H, W) masks, at ``ori_shape`` even with ``rescale=False``) goes through
    refining, the projections and the student's loss."""
    import cv2
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.hub import get_config
    from mmengine.registry import DefaultScope

    from mmsamrefiner import SAMRefinerHook
    from mmsamrefiner.models.semi_mask_detector import SemiMaskDetector
    from mmsamrefiner.synthetic import make_scene

    register_all_modules(init_default_scope=False)
    detector = tiny_detector(get_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py').model)
    detector.test_cfg.rcnn.score_thr = 2.0  # over any score: the teacher predicts nothing
    preprocessor = detector.pop('data_preprocessor')
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = SemiMaskDetector(detector=detector, data_preprocessor=preprocessor,
                                 semi_train_cfg=ConfigDict(cls_pseudo_thr=0.0),
                                 semi_test_cfg=ConfigDict())
    hook = SAMRefinerHook(refiner=dict(type='SAMRefiner', sam=tiny_sam_cfg, iters=1),
                          refine_pseudo_labels=True)
    attached = teacher_module.attach_mask_refiner(model, hook)
    height, width, scale = 96, 128, 0.75  # the views are the image at 3/4
    view = (int(height * scale), int(width * scale))
    image = make_scene(seed=3, height=height, width=width).image[..., ::-1]
    small = cv2.resize(np.ascontiguousarray(image), view[::-1], interpolation=cv2.INTER_AREA)
    meta = dict(img_shape=view, ori_shape=(height, width), scale_factor=(scale, scale),
                homography_matrix=np.diag([scale, scale, 1]).astype(np.float32))
    data = model.data_preprocessor(dict(
        inputs=[torch.from_numpy(small).permute(2, 0, 1)] * 2,
        data_samples=[DetDataSample(metainfo=meta), DetDataSample(metainfo=meta)]), False)

    model.eval()
    pseudo, _ = model.get_pseudo_instances(data['inputs'], copy.deepcopy(data['data_samples']))
    assert (attached.num_images, attached.num_refined) == (2, 0)
    for sample in pseudo:
        assert sample.gt_instances.masks.shape == (0, height, width)
        assert sample.gt_instances.bboxes.shape == (0, 4)
    student = model.project_pseudo_instances(pseudo, copy.deepcopy(data['data_samples']))
    for sample in student:
        masks = sample.gt_instances.masks
        assert type(masks).__name__ == 'BitmapMasks' and len(masks) == 0
        assert (masks.height, masks.width) == view
    model.train()
    losses = model.loss_by_pseudo_instances(data['inputs'], student)
    assert losses and all(torch.isfinite(v).all() for v in losses.values()
                          if isinstance(v, torch.Tensor))


@pytest.mark.slow
def test_training_goes_on_through_an_iteration_whose_teacher_predicts_nothing(
        tmp_path, tiny_sam_cfg, monkeypatch):
    runner = Runner.from_cfg(semi_cfg(tmp_path, tiny_sam_cfg))
    teacher = runner.model.teacher
    predict, found = teacher.predict, []

    def nothing_on_the_first_iteration(*args, **kwargs):
        teacher.roi_head.test_cfg.score_thr = 2.0 if not found else 0.0  # mmdet's own path
        results = predict(*args, **kwargs)
        found.append([len(r.pred_instances) for r in results])
        return results

    monkeypatch.setattr(teacher, 'predict', nothing_on_the_first_iteration)
    runner.train()
    assert found[0] == [0] and found[1][0] > 0 and runner.iter == 2
    hook = runner.hooks[[type(h).__name__ for h in runner.hooks].index('SAMRefinerHook')]
    assert hook._teacher_refiner.num_images == 2 and hook._teacher_refiner.num_refined > 0
