# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/refine.py --eval and --show-dir on collections with a bad image: the
images that failed (and those whose masks cannot be decoded) are left out and
counted, the others are scored and drawn, the exit status stays 1 when an
image failed."""
import os
import os.path as osp

import pytest

from mmsamrefiner.evaluation import evaluate_instances
from mmsamrefiner.testing import write_label_map_collection

from ..mm_data import HEIGHT, WIDTH
from .refine_helpers import coco_collection, load, refine_tool, save


def first_ann(coco, image_id):
    return next(a for a in coco['annotations'] if a['image_id'] == image_id)


def without_image(coco, image_id):
    return dict(coco, images=[im for im in coco['images'] if im['id'] != image_id],
                annotations=[a for a in coco['annotations'] if a['image_id'] != image_id])


def main(argv):
    """refine.py's exit status (0 when it returns)."""
    try:
        refine_tool.main(argv + ['--device', 'cpu'])
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def test_a_malformed_annotation_is_left_out_of_eval_and_overlays(tmp_path, config, capsys):
    img_dir, coarse_file, gt_file = coco_collection(tmp_path)
    coarse = load(coarse_file)
    first_ann(coarse, 2)['segmentation'] = [[10, 10, 20, 20]]  # two points
    save(coarse_file, coarse)
    out, show = tmp_path / 'refined.json', tmp_path / 'show'
    show.mkdir()
    (show / '2.jpg').write_bytes(b'an earlier run')  # stale: removed
    code = main([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', str(out),
                 '--eval', gt_file, '--show-dir', str(show)])
    assert code == 1
    printed = capsys.readouterr()
    assert 'images: 3 (2 refined, 1 failed' in printed.out
    assert 'eval: 1 image left out (failed: 2)' in printed.out
    assert 'overlays: 1 image left out (failed: 2)' in printed.out
    assert '1 image(s) failed' in printed.err
    assert sorted(os.listdir(show)) == ['1.jpg', '3.jpg']
    scores = load(str(out) + '.eval.json')
    assert set(scores) == {'coarse', 'refined', 'left_out'}
    assert scores['left_out'] == {'2': 'failed: AnnotationError: annotation '
                                  f'{first_ann(coarse, 2)["id"]}: polygon 0 has 2 point(s); '
                                  'a polygon needs at least 3 (x, y) points: fix or drop it'}
    # the remaining images are scored as a collection without image 2 would be
    gt = load(gt_file)
    assert scores['coarse'] == pytest.approx(evaluate_instances(without_image(coarse, 2),
                                                                without_image(gt, 2)))
    assert scores['refined'] == pytest.approx(evaluate_instances(without_image(load(out), 2),
                                                                 without_image(gt, 2)))
    assert scores['coarse']['miou'] < 1.0 and 0 < scores['refined']['miou'] <= 1.0


def test_an_undecodable_ground_truth_annotation_leaves_its_image_out(tmp_path, config,
                                                                     capsys):
    img_dir, coarse_file, gt_file = coco_collection(tmp_path)
    gt = load(gt_file)
    bad = first_ann(gt, 3)
    bad['segmentation'] = dict(size=[50, 60], counts='PPYo0')  # another size
    save(gt_file, gt)
    out = tmp_path / 'refined.json'
    code = main([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', str(out),
                 '--eval', gt_file, '--show-dir', str(tmp_path / 'show')])
    assert code == 0  # every image was refined
    printed = capsys.readouterr().out
    assert (f'eval: 1 image left out (cannot be read: 3 (ground truth: annotation {bad["id"]}: '
            'its RLE has size [50, 60] (height, width) but the image is '
            f'{HEIGHT}x{WIDTH}') in printed
    assert 'overlays:' not in printed  # the overlays do not read the ground truth
    assert sorted(os.listdir(tmp_path / 'show')) == ['1.jpg', '2.jpg', '3.jpg']
    scores = load(str(out) + '.eval.json')
    assert list(scores['left_out']) == ['3']
    assert scores['coarse'] == pytest.approx(
        evaluate_instances(without_image(load(coarse_file), 3), without_image(gt, 3)))


def test_an_unreadable_label_map_is_left_out_of_eval_and_overlays(tmp_path, config, capsys):
    root = write_label_map_collection(str(tmp_path / 'coarse'), num_images=3, coarse=True,
                                      height=HEIGHT, width=WIDTH)
    write_label_map_collection(str(tmp_path / 'gt'), num_images=3, height=HEIGHT, width=WIDTH)
    with open(osp.join(root, 'ann_dir', '0001.png'), 'wb') as f:
        f.write(b'not a png')
    out, show = tmp_path / 'refined', tmp_path / 'show'
    code = main([config, '--img-dir', osp.join(root, 'img_dir'), '--label-dir',
                 osp.join(root, 'ann_dir'), '--out', str(out),
                 '--eval', str(tmp_path / 'gt' / 'ann_dir'), '--show-dir', str(show)])
    assert code == 1
    printed = capsys.readouterr().out
    assert 'eval: 1 image left out (failed: 0001)' in printed
    assert 'overlays: 1 image left out (failed: 0001)' in printed
    assert sorted(os.listdir(show)) == ['0000.jpg', '0002.jpg']
    scores = load(out / 'eval.json')
    assert list(scores['left_out']) == ['0001'] and 0 < scores['refined']['miou'] <= 1


def test_a_mask_of_another_size_is_left_out_of_eval_and_overlays(tmp_path, config, capsys):
    import cv2
    import numpy as np

    from mmsamrefiner.synthetic import make_scene
    os.makedirs(tmp_path / 'images')
    for stem, seed in (('a', 1), ('b', 2)):
        scene = make_scene(seed=seed, height=HEIGHT, width=WIDTH, num_objects=2)
        cv2.imwrite(str(tmp_path / 'images' / f'{stem}.png'), scene.image[..., ::-1])
        for sub in ('coarse', 'gt'):
            os.makedirs(tmp_path / sub / stem)
            for k, mask in enumerate(scene.masks):
                cv2.imwrite(str(tmp_path / sub / stem / f'{k}.png'), mask.astype(np.uint8) * 255)
    cv2.imwrite(str(tmp_path / 'coarse' / 'b' / '0.png'), np.zeros((10, 10), np.uint8))
    out, show = tmp_path / 'refined', tmp_path / 'show'
    code = main([config, '--img-dir', str(tmp_path / 'images'), '--mask-dir',
                 str(tmp_path / 'coarse'), '--out', str(out), '--eval', str(tmp_path / 'gt'),
                 '--show-dir', str(show)])
    assert code == 1
    printed = capsys.readouterr().out
    assert 'eval: 1 image left out (failed: b)' in printed
    assert 'overlays: 1 image left out (failed: b)' in printed
    assert os.listdir(show) == ['a.jpg']
    assert list(load(out / 'eval.json')['left_out']) == ['b']
