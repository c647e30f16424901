# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefinerHook's export in real Runner test loops (mmengine's loop, mmdet's
and mmseg's datasets, pipelines and metrics) of models whose predictions the
test chooses (:mod:`tests.scripted_models`): images without predictions
among others, an mmseg image folder with sub-folders, ids and paths that
would collide or leave ``out_dir``; the export is read back by a second run."""
import glob
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from mmsamrefiner.mask_io import decode_rle
from mmsamrefiner.synthetic import make_coarse_masks, make_scene
from mmsamrefiner.synthetic.scenes import SHAPE_KINDS
from mmsamrefiner.utils.file_keys import file_key

from ..mm_data import HEIGHT, WIDTH, make_coco_dataset
from ..mm_runs import run_scripted_test, with_tiny_sam
from ..readme_snippets import readme_snippet
from ..scripted_models import ScriptedDetector, ScriptedSegmentor
from ..test_visualization._pictures import panels, read_rgb, title_pixels

SCORES = np.array([0.9, 0.6, 0.4], np.float32)
IGNORE = 255


def export_hooks(snippet: str, tiny_sam_cfg, **options) -> list:
    return with_tiny_sam(readme_snippet(snippet)['custom_hooks'], tiny_sam_cfg, **options)


def files_under(root) -> set:
    return {osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def assert_coarse_and_refined_panels_equal(path, num_panels: int) -> None:
    """The picture at ``path`` is ``num_panels`` panels ending in coarse |
    refined, and those two are equal outside their titles (nothing to draw,
    or the same drawn twice)."""
    picture = read_rgb(path)
    assert picture.shape == (HEIGHT, num_panels * WIDTH, 3)
    coarse, refined = panels(picture, WIDTH)[-2:]
    untitled = ~title_pixels((HEIGHT, WIDTH))
    np.testing.assert_array_equal(coarse[untitled], refined[untitled])


# -- mmdet -------------------------------------------------------------------
def coco_dataset(root, ann_file='instances.json') -> dict:
    return dict(type='CocoDataset', data_root=str(root), ann_file=ann_file,
                data_prefix=dict(img='images/'), metainfo=dict(classes=SHAPE_KINDS),
                test_mode=True,
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='PackDetInputs', meta_keys=('img_id', 'img_path',
                                                                'ori_shape', 'img_shape'))])


def scene_prediction(index: int):
    """Coarse masks of the scene ``make_coco_dataset`` draws as image ``index``."""
    scene = make_scene(seed=index, height=HEIGHT, width=WIDTH)
    masks = make_coarse_masks(scene.masks, seed=100 + index)
    return masks, SCORES[:len(masks)], scene.labels - 1


def det_predictions(ids, empty=()) -> dict:
    """Predictions of the images ``ids`` (in ``make_coco_dataset``'s order):
    those in ``empty`` predict nothing."""
    return {img_id: None if img_id in empty else scene_prediction(index)
            for index, img_id in enumerate(ids)}


def exported_masks(coco: dict, img_id) -> np.ndarray:
    return decode_rle([a['segmentation'] for a in coco['annotations']
                       if a['image_id'] == img_id], HEIGHT, WIDTH)


def test_mmdet_loop_exports_and_resumes_images_without_instances(tmp_path, tiny_sam_cfg):
    ann_file = make_coco_dataset(tmp_path / 'coco', num_images=3)
    predictions = det_predictions([1, 2, 3], empty={2})
    hooks = export_hooks('mmdet-hook', tiny_sam_cfg, keep_coarse=True, out_dir='pseudo_labels')
    metric = dict(type='CocoMetric', ann_file=ann_file, metric='segm')
    visualization = dict(  # ours, drawing the image (no ground truth) | coarse | refined
        visualizer=dict(type='mmsamrefiner.SAMRefinerDetLocalVisualizer', name=str(tmp_path)),
        hook=dict(type='DetVisualizationHook', draw=True, score_thr=0.0, test_out_dir='vis'))
    runner, hook, metrics, received = run_scripted_test(
        ScriptedDetector(predictions), tmp_path / 'work', coco_dataset(tmp_path / 'coco'),
        [metric], hooks, 'mmdet', visualization)

    assert 'coco/segm_mAP' in metrics and metrics['recorded'] == 3
    assert (hook.num_refined, hook.num_resumed, hook.num_instances_refined) == (2, 0, 6)
    assert hook.num_nothing_to_refine == 1  # image 2: no instance
    by_id = {s['img_id']: s['pred_instances'] for s in received}
    empty = by_id[2]
    assert empty['masks'].shape == empty['coarse_masks'].shape == (0, HEIGHT, WIDTH)
    assert any((by_id[i]['masks'] != by_id[i]['coarse_masks']).any() for i in (1, 3))
    coco = json.load(open(tmp_path / 'work' / 'pseudo_labels' / 'instances.json'))
    assert [im['id'] for im in coco['images']] == [1, 2, 3]  # the empty image has its entry
    assert {a['image_id'] for a in coco['annotations']} == {1, 3}
    for img_id, pred in by_id.items():
        np.testing.assert_array_equal(exported_masks(coco, img_id), pred['masks'].numpy())
    pictures = osp.join(runner.work_dir, runner.timestamp, 'vis')
    assert sorted(os.listdir(pictures)) == ['0000.png', '0001.png', '0002.png']
    assert_coarse_and_refined_panels_equal(osp.join(pictures, '0001.png'), 3)  # image 2

    _, hook, _, again = run_scripted_test(
        ScriptedDetector(predictions), tmp_path / 'work', coco_dataset(tmp_path / 'coco'),
        [metric], hooks, 'mmdet')
    assert (hook.num_refined, hook.num_resumed, hook.num_stale) == (0, 3, 0)
    for first, second in zip(received, again):
        np.testing.assert_array_equal(first['pred_instances']['masks'],
                                      second['pred_instances']['masks'])
        np.testing.assert_array_equal(first['pred_instances']['coarse_masks'],
                                      second['pred_instances']['coarse_masks'])


def coco_with_ids(root, ids) -> str:
    """``make_coco_dataset``'s images and annotations under other ids; the
    json's name."""
    coco = json.load(open(make_coco_dataset(root, num_images=len(ids))))
    new_id = {im['id']: img_id for im, img_id in zip(coco['images'], ids)}
    for image in coco['images']:
        image['id'] = new_id[image['id']]
    for annotation in coco['annotations']:
        annotation['image_id'] = new_id[annotation['image_id']]
    with open(osp.join(root, 'renamed.json'), 'w') as f:
        json.dump(coco, f)
    return 'renamed.json'


def test_mmdet_ids_that_look_like_paths_are_exported_inside_out_dir(tmp_path, tiny_sam_cfg):
    ids = ['../../x', '/tmp/x', 'a/b', 'a_b', '.records']
    ann_file = coco_with_ids(tmp_path / 'coco', ids)
    out_dir = tmp_path / 'export'
    hooks = export_hooks('mmdet-hook', tiny_sam_cfg, out_dir=str(out_dir))
    stray = '/tmp/x.json'
    stray_before = osp.exists(stray)
    before = files_under(tmp_path)
    _, hook, _, received = run_scripted_test(
        ScriptedDetector(det_predictions(ids, empty={'../../x'})), tmp_path / 'work',
        coco_dataset(tmp_path / 'coco', ann_file), [], hooks, 'mmdet')

    assert (hook.num_refined, hook.num_nothing_to_refine, len(received)) == (4, 1, 5)
    new = files_under(tmp_path) - before
    assert all(f.split(os.sep)[0] in ('export', 'work') for f in new), sorted(new)
    keys = [file_key(img_id) for img_id in ids]
    assert len(set(keys)) == 5  # 'a/b' and 'a_b' apart
    assert files_under(out_dir) == ({'instances.json'} |
                                    {osp.join('parts', k + '.json') for k in keys} |
                                    {osp.join('.records', k + '.json') for k in keys})
    assert osp.exists(stray) == stray_before
    coco = json.load(open(out_dir / 'instances.json'))
    assert sorted(im['id'] for im in coco['images']) == sorted(ids)

    _, hook, _, _ = run_scripted_test(
        ScriptedDetector(det_predictions(ids, empty={'../../x'})), tmp_path / 'work',
        coco_dataset(tmp_path / 'coco', ann_file), [], hooks, 'mmdet')
    assert (hook.num_refined, hook.num_resumed) == (0, 5)


def test_mmdet_ids_one_and_string_one_are_refused_before_the_second_is_written(
        tmp_path, tiny_sam_cfg):
    ids = [1, 2, '1']  # batches of 2: '1' comes after 1 is written
    ann_file = coco_with_ids(tmp_path / 'coco', ids)
    out_dir = tmp_path / 'export'
    hooks = export_hooks('mmdet-hook', tiny_sam_cfg, out_dir=str(out_dir))
    with pytest.raises(ValueError, match=r"images img_id=1 \(.*0000.png\) and img_id='1' "
                       r'\(.*0002.png\) would both be exported as .*parts/1.json'):
        run_scripted_test(ScriptedDetector(det_predictions(ids)), tmp_path / 'work',
                          coco_dataset(tmp_path / 'coco', ann_file), [], hooks, 'mmdet')
    part = json.load(open(out_dir / 'parts' / '1.json'))
    assert part['image'] == dict(id=1, file_name='0000.png', height=HEIGHT, width=WIDTH)
    assert files_under(out_dir) == {'parts/1.json', 'parts/2.json', '.records/1.json',
                                    '.records/2.json'}


# -- mmseg -------------------------------------------------------------------
def write_seg_image(root, relative: str, seed: int, label_map: bool = True) -> np.ndarray:
    """The scene ``seed`` as ``root/img_dir/<relative>.png``, with its label
    map in ``root/ann_dir`` unless told not to; returns its coarse label map."""
    scene = make_scene(seed=seed, height=HEIGHT, width=WIDTH)
    truth = np.zeros((HEIGHT, WIDTH), np.uint8)
    coarse = np.zeros((HEIGHT, WIDTH), np.int64)
    for mask, rough, label in zip(scene.masks, make_coarse_masks(scene.masks, seed=seed),
                                  scene.labels):
        truth[mask] = label
        coarse[rough] = label
    pictures = [('img_dir', scene.image[..., ::-1])] + ([('ann_dir', truth)] if label_map else [])
    for folder, picture in pictures:
        path = osp.join(str(root), folder, relative + '.png')
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, picture)
    return coarse


def seg_dataset(root, **options) -> dict:
    pipeline = [dict(type='LoadImageFromFile')]
    if 'ann_file' not in options:
        pipeline.append(dict(type='LoadAnnotations'))
    return dict(type='BaseSegDataset', data_root=str(root),
                data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
                img_suffix='.png', seg_map_suffix='.png',
                metainfo=dict(classes=('background', ) + SHAPE_KINDS),
                pipeline=pipeline + [dict(type='PackSegInputs')], **options)


def test_mmseg_loop_exports_a_nested_folder_and_empty_maps_and_resumes(tmp_path,
                                                                        tiny_sam_cfg):
    root = tmp_path / 'seg'
    predictions = {}
    for seed, (relative, kind) in enumerate([('a/x', 'coarse'), ('b/x', 'background'),
                                             ('c/y', 'ignore'), ('z', 'coarse')]):
        coarse = write_seg_image(root, relative, seed)
        fill = dict(background=0, ignore=IGNORE).get(kind)
        predictions[str(root / 'img_dir' / (relative + '.png'))] = (
            coarse if fill is None else np.full((HEIGHT, WIDTH), fill, np.int64))
    out_dir = tmp_path / 'labels'
    hooks = export_hooks('mmseg-hook', tiny_sam_cfg, keep_coarse=True, out_dir=str(out_dir))
    visualization = dict(  # ours, drawing ground truth | coarse | refined
        visualizer=dict(type='mmsamrefiner.SAMRefinerSegLocalVisualizer', name=str(tmp_path),
                        vis_backends=[dict(type='LocalVisBackend')],
                        save_dir=str(tmp_path / 'vis')),
        hook=dict(type='SegVisualizationHook', draw=True, interval=1))
    _, hook, metrics, received = run_scripted_test(
        ScriptedSegmentor(predictions), tmp_path / 'work', seg_dataset(root),
        [dict(type='IoUMetric', iou_metrics=['mIoU'])], hooks, 'mmseg', visualization)

    assert 'mIoU' in metrics and metrics['recorded'] == 4
    # b/x: background only, c/y: ignore_index only: nothing to refine
    assert (hook.num_refined, hook.num_nothing_to_refine, hook.num_resumed) == (2, 2, 0)
    written = {f for f in files_under(out_dir) if not f.startswith('.records')}
    # a/x and b/x both kept; each map with its class signals, gathered in the csv
    assert written == {'a/x.png', 'b/x.png', 'c/y.png', 'z.png', 'a/x.json', 'b/x.json',
                       'c/y.json', 'z.json', 'class_signals.csv'}
    with open(out_dir / 'a/x.json') as f:
        table = json.load(f)
    assert table and all(0 < row['score'] <= 1 and 0 <= row['stability'] <= 1 and
                         0 <= row['coarse_iou'] <= 1 for row in table)
    with open(out_dir / 'b/x.json') as f:
        assert json.load(f) == []  # nothing to refine: no class
    with open(out_dir / 'class_signals.csv') as f:
        lines = f.read().splitlines()
    assert lines[0].startswith('image,class,') and len(lines) == 1 + len(table) + len(
        json.load(open(out_dir / 'z.json')))
    refined = {}
    for sample in received:
        relative = osp.relpath(sample['img_path'], root / 'img_dir')
        refined[relative] = sample['pred_sem_seg']['data'][0].numpy()
        exported = cv2.imread(str(out_dir / relative), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(exported, refined[relative])
    assert (refined['b/x.png'] == 0).all() and (refined['c/y.png'] == IGNORE).all()
    assert (refined['a/x.png'] != predictions[str(root / 'img_dir' / 'a/x.png')]).any()
    for name in ('y.png', 'z.png'):  # all ignore_index; refined
        (picture, ) = glob.glob(str(tmp_path / 'vis' / '**' / f'test_{name}_*.png'),
                                recursive=True)
        if name == 'y.png':
            assert_coarse_and_refined_panels_equal(picture, 3)
        else:
            assert read_rgb(picture).shape == (HEIGHT, 3 * WIDTH, 3)

    # the export is a dataset's label maps: mmseg lists the image folder
    # recursively and finds each image's map at the same relative path
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    student = BaseSegDataset(data_root=str(root),
                             data_prefix=dict(img_path='img_dir', seg_map_path=str(out_dir)),
                             img_suffix='.png', seg_map_suffix='.png',
                             metainfo=dict(classes=('background', ) + SHAPE_KINDS),
                             pipeline=[LoadAnnotations()])
    assert len(student) == 4
    for index in range(len(student)):
        info = student.get_data_info(index)
        relative = osp.relpath(info['img_path'], root / 'img_dir')
        np.testing.assert_array_equal(student[index]['gt_seg_map'], refined[relative])

    _, hook, _, again = run_scripted_test(
        ScriptedSegmentor(predictions), tmp_path / 'work', seg_dataset(root),
        [dict(type='IoUMetric', iou_metrics=['mIoU'])], hooks, 'mmseg')
    assert (hook.num_refined, hook.num_resumed, hook.num_stale) == (0, 4, 0)
    for first, second in zip(received, again):
        np.testing.assert_array_equal(first['pred_sem_seg']['data'],
                                      second['pred_sem_seg']['data'])
        np.testing.assert_array_equal(first['coarse_sem_seg']['data'],
                                      second['coarse_sem_seg']['data'])


def test_mmseg_images_outside_the_folder_get_their_stem_and_one_stem_twice_is_refused(
        tmp_path, tiny_sam_cfg):
    root = tmp_path / 'seg'
    relatives = ['a/x', '../one/x', '../../two/x']  # batches of 2: the third collides
    predictions = {str(root / 'img_dir' / (r + '.png')): write_seg_image(root, r, seed, False)
                   for seed, r in enumerate(relatives)}
    (root / 'list.txt').write_text('\n'.join(relatives) + '\n')
    out_dir = tmp_path / 'labels'
    hooks = export_hooks('mmseg-hook', tiny_sam_cfg, out_dir=str(out_dir))
    before = files_under(tmp_path)
    one, two = (osp.normpath(str(root / 'img_dir' / (r + '.png'))) for r in relatives[1:])
    message = f'images {one} and {two} would both be exported as {out_dir}/x.png'
    with pytest.raises(ValueError, match=re.escape(message)):
        run_scripted_test(ScriptedSegmentor(predictions), tmp_path / 'work',
                          seg_dataset(root, ann_file='list.txt'), [], hooks, 'mmseg')
    new = files_under(tmp_path) - before
    assert all(f.split(os.sep)[0] in ('labels', 'work') for f in new), sorted(new)
    assert files_under(out_dir) == {'a/x.png', 'x.png', 'a/x.json', 'x.json',
                                    '.records/a/x.json', '.records/x.json'}
    record = json.load(open(out_dir / '.records' / 'x.json'))
    assert osp.normpath(record['img_path']) == one
