# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/refine.py on generated tiny collections: formats round-trip, nothing is
lost, an interrupted run resumes, two processes agree with one."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as COCO_MASK
from pycocotools.coco import COCO

from mmsamrefiner.mask_io.records import RecordBook
from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.synthetic.defects import make_coarse_masks

from ..mm_data import HEIGHT, WIDTH
from .refine_helpers import ROOT, coco_collection, run


def test_coco_round_trip_keeps_fields_and_evaluates(tmp_path, config, capsys):
    img_dir, coarse_file, gt_file = coco_collection(tmp_path)
    out = str(tmp_path / 'refined.json')
    report = run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', out,
                  '--eval', gt_file, '--show-dir', str(tmp_path / 'show'), '--device', 'cpu'])
    coarse, refined = json.load(open(coarse_file)), json.load(open(out))
    assert refined['images'] == coarse['images'] and refined['categories'] == coarse['categories']
    assert len(refined['annotations']) == len(coarse['annotations'])
    for before, after in zip(coarse['annotations'], refined['annotations']):
        assert isinstance(after['segmentation'], dict)  # RLE
        assert 0 < after['refined_score'] <= 1 and 0 < after['refined_coarse_iou'] <= 1
        assert 0 <= after['refined_stability'] <= 1  # a tiny SAM's logits are weak
        refined_mask = COCO_MASK.decode(after['segmentation']).astype(bool)
        coarse_mask = COCO_MASK.decode(COCO_MASK.frPyObjects(
            before['segmentation'], HEIGHT, WIDTH)).astype(bool)
        coarse_mask = coarse_mask.any(-1) if coarse_mask.ndim == 3 else coarse_mask
        iou = (refined_mask & coarse_mask).sum() / (refined_mask | coarse_mask).sum()
        assert after['refined_coarse_iou'] == pytest.approx(iou, abs=1e-6)
        for key in ('id', 'image_id', 'category_id', 'bbox', 'area', 'iscrowd'):
            assert after[key] == before[key]
    api = COCO(out)  # pycocotools reads it
    assert api.annToMask(api.loadAnns([1])[0]).shape == (HEIGHT, WIDTH)
    scores = report['eval']
    assert set(scores) == {'coarse', 'refined'}
    assert set(scores['coarse']) == {'miou', 'biou', 'ap', 'ap50', 'ap75'}
    assert scores['coarse']['miou'] < 1.0  # the coarse masks are spoiled
    assert json.load(open(out + '.eval.json')) == scores
    printed = capsys.readouterr().out
    assert 'images: 3 (3 refined, 0 failed' in printed and '| coarse |' in printed
    assert sorted(os.listdir(tmp_path / 'show')) == ['1.jpg', '2.jpg', '3.jpg']


def test_an_interrupted_run_resumes_to_the_same_output(tmp_path, config, monkeypatch):
    img_dir, coarse_file, _ = coco_collection(tmp_path)
    reference = str(tmp_path / 'reference.json')
    run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', reference])

    out = str(tmp_path / 'refined.json')
    done, write_record = [], RecordBook.write

    def crash_after_two(book, key, **record):  # Ctrl-C once two images are recorded
        write_record(book, key, **record)
        done.append(key)
        if len(done) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RecordBook, 'write', crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', out])
    monkeypatch.undo()
    assert done == ['1', '2'] and not osp.exists(out)  # merged only at the end
    report = run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', out])
    assert report['rank_summary']['skipped'] == 2 and report['rank_summary']['done'] == 1
    assert json.load(open(out)) == json.load(open(reference))


@pytest.mark.parametrize('encode_batch', ['1', '3'])
def test_a_failing_image_is_reported_and_passed_through(tmp_path, config, capsys, encode_batch):
    img_dir, coarse_file, _ = coco_collection(tmp_path)
    os.remove(osp.join(img_dir, '0001.png'))  # image id 2 is unreadable
    out = str(tmp_path / 'refined.json')
    report = run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', out,
                  '--encode-batch', encode_batch])
    assert report['rank_summary']['failed'][0][0] == '2'
    assert 'images: 3 (2 refined, 1 failed' in capsys.readouterr().out
    coarse_api, refined_api = COCO(coarse_file), COCO(out)
    for ann_id in coarse_api.getAnnIds(imgIds=[2]):
        np.testing.assert_array_equal(
            refined_api.annToMask(refined_api.loadAnns([ann_id])[0]),
            coarse_api.annToMask(coarse_api.loadAnns([ann_id])[0]))


def test_palette_label_maps_round_trip(tmp_path, config):
    palette = np.random.default_rng(0).integers(0, 255, (256, 3), dtype=np.uint8)
    for sub in ('images', 'coarse', 'gt'):
        os.makedirs(tmp_path / sub)
    for index in range(2):
        scene = make_scene(seed=index, height=HEIGHT, width=WIDTH, num_objects=3)
        cv2.imwrite(str(tmp_path / 'images' / f'{index}.jpg'), scene.image[..., ::-1])
        for sub, masks in (('gt', scene.masks), ('coarse', make_coarse_masks(scene.masks))):
            label_map = np.zeros((HEIGHT, WIDTH), np.uint8)
            for mask, label in zip(masks, scene.labels):
                label_map[mask] = label
            label_map[:3, :3] = 255
            image = Image.fromarray(label_map, mode='P')
            image.putpalette(palette.reshape(-1).tolist())
            image.save(tmp_path / sub / f'{index}.png')
    out = tmp_path / 'refined'
    report = run([config, '--img-dir', str(tmp_path / 'images'), '--label-dir',
                  str(tmp_path / 'coarse'), '--out', str(out), '--eval', str(tmp_path / 'gt')])
    for index in range(2):
        with Image.open(out / f'{index}.png') as image:
            assert image.mode == 'P'
            np.testing.assert_array_equal(
                np.array(image.getpalette(), np.uint8).reshape(-1, 3)[:256], palette)
            refined = np.array(image)
        assert refined.shape == (HEIGHT, WIDTH) and (refined[:3, :3] == 255).all()
        # its class signals: one row per class refined, the pixels as in the maps
        coarse = np.array(Image.open(tmp_path / 'coarse' / f'{index}.png'))
        table = json.load(open(out / f'{index}.json'))
        assert [row['class'] for row in table] == [
            c for c in np.unique(coarse).tolist() if c not in (0, 255)]
        for row in table:
            assert row['coarse_pixels'] == (coarse == row['class']).sum()
            assert row['refined_pixels'] == (refined == row['class']).sum()
            assert row['instances'] >= 1 and 0 < row['score'] <= 1
    assert set(report['eval']['refined']) == {'miou', 'biou'}
    with open(out / 'class_signals.csv') as f:
        lines = f.read().splitlines()
    assert lines[0] == ('image,class,instances,coarse_pixels,refined_pixels,coarse_iou,score,'
                        'stability')
    assert [line.split(',')[0] for line in lines[1:]] == sorted(
        line.split(',')[0] for line in lines[1:]) and {line[0] for line in lines[1:]} == {
            '0', '1'}


def test_binary_mask_folders_round_trip(tmp_path, config):
    scene = make_scene(seed=5, height=HEIGHT, width=WIDTH, num_objects=3)
    os.makedirs(tmp_path / 'images')
    cv2.imwrite(str(tmp_path / 'images' / 'a.png'), scene.image[..., ::-1])
    for sub, masks in (('coarse', make_coarse_masks(scene.masks)), ('gt', scene.masks)):
        os.makedirs(tmp_path / sub / 'a')
        for k, mask in enumerate(masks):
            cv2.imwrite(str(tmp_path / sub / 'a' / f'{k}.png'), mask.astype(np.uint8) * 255)
    out = tmp_path / 'refined'
    report = run([config, '--img-dir', str(tmp_path / 'images'), '--mask-dir',
                  str(tmp_path / 'coarse'), '--out', str(out), '--eval', str(tmp_path / 'gt')])
    names = sorted(os.listdir(out / 'a'))
    assert names == [f'{k}.png' for k in range(len(scene.masks))] + ['signals.json']
    signals = json.load(open(out / 'a' / 'signals.json'))
    assert sorted(signals) == names[:-1]
    assert all(set(v) == {'refined_score', 'refined_stability', 'refined_coarse_iou'}
               for v in signals.values())
    mask = cv2.imread(str(out / 'a' / '0.png'), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (HEIGHT, WIDTH) and set(np.unique(mask)) <= {0, 255}
    assert report['records'][0]['num_masks'] == len(scene.masks)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_give_the_same_output_as_one(tmp_path, config):
    import torch
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=4)
    single = str(tmp_path / 'single.json')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: bit-identical arithmetic needs equal threads
    try:
        run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', single])
    finally:
        torch.set_num_threads(threads)
    double = str(tmp_path / 'double.json')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                    '--master_port', str(_free_port()), osp.join(ROOT, 'tools', 'refine.py'),
                    config, '--img-dir', img_dir, '--coco', coarse_file, '--out', double,
                    '--launcher', 'pytorch', '--device', 'cpu'],
                   env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.load(open(osp.join(double + '.parts', '.records', f)))
               for f in os.listdir(osp.join(double + '.parts', '.records'))]
    assert len(records) == 4
    assert json.load(open(double)) == json.load(open(single))


def test_encode_batch_gives_the_same_collection(tmp_path, config):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=3)
    one, batched = str(tmp_path / 'one.json'), str(tmp_path / 'batched.json')
    run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', one])
    report = run([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', batched,
                  '--encode-batch', '2'])
    assert report['rank_summary']['done'] == 3 and not report['rank_summary']['failed']
    first, second = COCO(one), COCO(batched)
    for ann_id in first.getAnnIds():
        a = first.annToMask(first.loadAnns([ann_id])[0]).astype(bool)
        b = second.annToMask(second.loadAnns([ann_id])[0]).astype(bool)
        assert (a & b).sum() >= 0.99 * (a | b).sum()
