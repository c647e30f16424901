# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""PseudoLabelExport on its own: keys, records, read-back, stale reasons, no SAM.

The refined masks are stand-ins written by the test; the hook's runs through
it are in ``test_samrefiner_hook_reuse.py``.
"""
import json
import os
import os.path as osp
import re
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmsamrefiner.engine.loop_report import LoopCounts
from mmsamrefiner.engine.prediction_refiner import RefineOptions
from mmsamrefiner.engine.pseudo_label_export import (
    KEY_VERSION,
    PseudoLabelExport,
    image_identity,
    prediction_digest,
)
from mmsamrefiner.utils.file_keys import file_key

HEIGHT, WIDTH = 12, 16
CLASSES = ('a', 'b')


@pytest.fixture
def image(tmp_path):
    path = str(tmp_path / 'img' / '0001.png')
    os.makedirs(osp.dirname(path))
    cv2.imwrite(path, np.full((HEIGHT, WIDTH, 3), 7, np.uint8))
    return path


def det_sample(image, seed=0, scores=(0.9, 0.2)):
    rng = np.random.default_rng(seed)
    sample = DetDataSample(metainfo=dict(img_id=1, img_path=image))
    sample.pred_instances = InstanceData(
        masks=torch.from_numpy(rng.random((len(scores), HEIGHT, WIDTH)) > 0.5),
        scores=torch.tensor(scores, dtype=torch.float32),
        labels=torch.arange(len(scores)) % len(CLASSES))
    return sample


def seg_sample(image, seed=0):
    rng = np.random.default_rng(seed)
    sample = SegDataSample(metainfo=dict(img_path=image))
    sample.pred_sem_seg = PixelData(
        data=torch.from_numpy(rng.integers(0, 3, (1, HEIGHT, WIDTH))))
    return sample


def make_export(out_dir, reuse=True, export_score_thr=None, **options):
    counts = LoopCounts()
    dataset = SimpleNamespace(metainfo=dict(classes=CLASSES))
    return PseudoLabelExport(str(out_dir), dataset, 'refiner-fingerprint',
                             RefineOptions(**options), counts, reuse,
                             export_score_thr=export_score_thr), counts


def refine_stand_in(sample):
    """What refining would do: here, invert the masks (or shift the labels)."""
    if 'pred_instances' in sample:
        sample.pred_instances.masks = ~sample.pred_instances.masks
    else:
        sample.pred_sem_seg = PixelData(data=(sample.pred_sem_seg.data + 1) % 3)


def export_once(out_dir, sample, **options):
    """A first run: nothing to read back, refine, write."""
    export, _ = make_export(out_dir, **options)
    reused, key = export.read_back(sample)
    assert not reused
    refine_stand_in(sample)
    export.write(sample, key)
    export.finish(SimpleNamespace(info=lambda msg: None))
    return sample


def test_det_export_is_read_back_for_the_same_key_with_coarse_masks_and_counts(
        tmp_path, image):
    refined = export_once(tmp_path, det_sample(image)).pred_instances.masks
    coco = json.load(open(tmp_path / 'instances.json'))
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    assert len(coco['annotations']) == 2

    export, counts = make_export(tmp_path, keep_coarse=True, score_thr=0.5)
    sample = det_sample(image)
    coarse = sample.pred_instances.masks.clone()
    # score_thr is part of the key: another threshold is another refinement
    reused, _ = export.read_back(sample)
    assert not reused and counts.stale_reasons['settings'] == 1

    export, counts = make_export(tmp_path, keep_coarse=True)
    sample = det_sample(image)
    reused, key = export.read_back(sample)
    assert reused and key['refiner'] == 'refiner-fingerprint'
    assert key['settings'].startswith(f'v{KEY_VERSION} det ')
    np.testing.assert_array_equal(sample.pred_instances.masks, refined)
    np.testing.assert_array_equal(sample.pred_instances.coarse_masks, coarse)
    assert (counts.num_resumed, counts.num_stale) == (1, 0)
    assert (counts.num_instances_reused, counts.num_instances_skipped) == (2, 0)


def test_without_reuse_nothing_is_read_back_or_counted_stale(tmp_path, image):
    export_once(tmp_path, det_sample(image))
    export, counts = make_export(tmp_path, reuse=False)
    sample = det_sample(image)
    before = sample.pred_instances.masks.clone()
    reused, key = export.read_back(sample)
    assert not reused and key is not None
    np.testing.assert_array_equal(sample.pred_instances.masks, before)
    assert (counts.num_resumed, counts.num_stale) == (0, 0)


def test_stale_exports_are_counted_with_why(tmp_path, image):
    export_once(tmp_path, det_sample(image))

    def why(sample, **options):
        export, counts = make_export(tmp_path, **options)
        want = export.key(sample)
        reused, key = export.read_back(sample)
        assert key == want
        assert counts.num_stale == (not reused)
        return {r for r, c in counts.stale_reasons.items() if c}

    assert why(det_sample(image, seed=1)) == {'prediction'}
    assert why(det_sample(image, scores=(0.9, 0.3))) == {'prediction'}
    assert why(det_sample(image), encode_batch=2) == {'settings'}
    assert why(det_sample(image), keep_coarse=True) == set()  # keep_coarse: not a setting
    record = tmp_path / '.records' / '1.json'
    stored = json.loads(record.read_text())
    assert stored['fields'] == make_export(tmp_path)[0].key(det_sample(image))
    assert set(stored['outputs']) == {osp.join('parts', '1.json')}
    stored['fields']['settings'] = stored['fields']['settings'].replace(f'v{KEY_VERSION} ', 'v1 ')
    stored['settings'] = 'another digest'
    record.write_text(json.dumps(stored))
    assert why(det_sample(image)) == {'version'}  # written by an earlier release
    record.unlink()  # an interrupted write, or an export of an older release
    assert why(det_sample(image)) == {'unrecorded'}


def test_export_score_thr_filters_instances_json_only_and_refines_nothing_again(
        tmp_path, image):
    export, _ = make_export(tmp_path, export_score_thr=0.5)
    reused, key = export.read_back(det_sample(image))  # scores (0.9, 0.2)
    export.write(det_sample(image), key)
    logged = []
    export.finish(SimpleNamespace(info=logged.append))
    coco = json.load(open(tmp_path / 'instances.json'))
    assert [a['score'] for a in coco['annotations']] == [pytest.approx(0.9)]
    assert [im['id'] for im in coco['images']] == [1]
    assert '1 instances under export_score_thr=0.5 left out' in logged[0]

    # another threshold: the image is read back (all its instances), not refined
    export, counts = make_export(tmp_path, export_score_thr=0.1)
    sample = det_sample(image)
    assert export.read_back(sample)[0] and counts.num_stale == 0
    assert len(sample.pred_instances.masks) == 2
    export.finish(SimpleNamespace(info=logged.append))
    coco = json.load(open(tmp_path / 'instances.json'))
    assert sorted(a['score'] for a in coco['annotations']) == pytest.approx([0.2, 0.9])


def test_a_new_export_dir_has_nothing_stale(tmp_path, image):
    export, counts = make_export(tmp_path / 'new')
    assert export.read_back(det_sample(image))[0] is False
    assert counts.num_stale == 0


def test_seg_export_round_trip_and_a_changed_file_is_damaged(tmp_path, image):
    refined = export_once(tmp_path, seg_sample(image)).pred_sem_seg.data
    assert json.load(open(tmp_path / '.records' / '0001.json'))['outputs'].keys() == {'0001.png'}

    export, counts = make_export(tmp_path, keep_coarse=True)
    sample = seg_sample(image)
    coarse = sample.pred_sem_seg.data.clone()
    assert export.read_back(sample)[0]
    np.testing.assert_array_equal(sample.pred_sem_seg.data, refined)
    np.testing.assert_array_equal(sample.coarse_sem_seg.data, coarse)

    cv2.imwrite(str(tmp_path / '0001.png'), np.zeros((HEIGHT, WIDTH), np.uint8))
    export, counts = make_export(tmp_path)
    assert not export.read_back(seg_sample(image))[0]
    assert counts.stale_reasons['damaged'] == 1


def test_exports_that_cannot_be_named_or_labelled_raise(tmp_path, image):
    export, _ = make_export(tmp_path)
    sample = seg_sample(image)
    sample.set_metainfo(dict(img_path=None))
    with pytest.raises(ValueError, match='exporting label maps needs img_path'):
        export.claim(sample)
    with pytest.raises(ValueError, match='exporting label maps needs img_path'):
        export.read_back(sample)
    nameless = det_sample(image)
    nameless.set_metainfo(dict(img_id=None, img_path=None))
    with pytest.raises(ValueError, match='needs img_id'):
        export.read_back(nameless)
    with pytest.raises(ValueError, match='none of pred_instances .mmdet., pred_sem_seg'):
        export.read_back(DetDataSample(metainfo=dict(img_id=1, img_path=image)))
    export = PseudoLabelExport(str(tmp_path), SimpleNamespace(metainfo={}), 'r',
                               RefineOptions(), LoopCounts(), True)
    with pytest.raises(ValueError, match='class names'):
        export.read_back(det_sample(image))


def test_prediction_and_image_digests_bind_what_they_say(tmp_path, image):
    sample = det_sample(image)
    base = prediction_digest(sample)
    assert prediction_digest(det_sample(image)) == base
    relabelled = det_sample(image)
    relabelled.pred_instances.labels = relabelled.pred_instances.labels + 1
    assert prediction_digest(relabelled) != base
    assert prediction_digest(seg_sample(image)) != prediction_digest(seg_sample(image, 1))

    identity = image_identity(sample)
    assert identity.startswith(f'file:{osp.abspath(image)}:')
    pixels = torch.zeros(3, HEIGHT, WIDTH, dtype=torch.uint8)
    no_file = DetDataSample(metainfo=dict(img_shape=(HEIGHT, WIDTH)))
    rebuilt = image_identity(no_file, pixels)
    assert rebuilt.startswith('pixels:')
    assert image_identity(no_file, pixels + 1) != rebuilt
    assert image_identity(no_file, pixels, 'rgb') != rebuilt
    assert image_identity(no_file) == 'unreadable:None'


def empty_det_sample(image, img_id=1):
    """What mmdet predicts for an image without detections: (0, H, W) masks."""
    sample = DetDataSample(metainfo=dict(img_id=img_id, img_path=image))
    sample.pred_instances = InstanceData(
        masks=torch.zeros(0, HEIGHT, WIDTH, dtype=torch.bool), scores=torch.zeros(0),
        labels=torch.zeros(0, dtype=torch.int64), bboxes=torch.zeros(0, 4))
    return sample


def uniform_seg_sample(image, value):
    sample = SegDataSample(metainfo=dict(img_path=image))
    sample.pred_sem_seg = PixelData(data=torch.full((1, HEIGHT, WIDTH), value))
    return sample


def test_an_image_without_instances_is_exported_and_read_back(tmp_path, image):
    export, counts = make_export(tmp_path, keep_coarse=True)
    sample = empty_det_sample(image)
    reused, key = export.read_back(sample)
    assert not reused and key['prediction'] != export.key(det_sample(image))['prediction']
    export.write(sample, key)
    export.finish(SimpleNamespace(info=lambda msg: None))
    coco = json.load(open(tmp_path / 'instances.json'))
    assert coco['images'] == [dict(id=1, file_name='0001.png', height=HEIGHT, width=WIDTH)]
    assert coco['annotations'] == []

    export, counts = make_export(tmp_path, keep_coarse=True)
    sample = empty_det_sample(image)
    assert export.read_back(sample)[0]
    assert (counts.num_resumed, counts.num_stale, counts.num_instances_reused) == (1, 0, 0)
    assert sample.pred_instances.masks.shape == sample.pred_instances.coarse_masks.shape == (
        0, HEIGHT, WIDTH)
    # instances predicted since: another prediction, refined again
    export, counts = make_export(tmp_path)
    assert not export.read_back(det_sample(image))[0]
    assert counts.stale_reasons['prediction'] == 1


@pytest.mark.parametrize('value', [0, 255])  # all background; all ignore_index
def test_a_label_map_without_classes_to_refine_is_exported_and_read_back(tmp_path, image,
                                                                          value):
    export_once(tmp_path, uniform_seg_sample(image, value))  # the stand-in shifts labels
    export, counts = make_export(tmp_path, keep_coarse=True)
    sample = uniform_seg_sample(image, value)
    assert export.read_back(sample)[0] and counts.num_resumed == 1
    np.testing.assert_array_equal(sample.pred_sem_seg.data, (value + 1) % 3)
    np.testing.assert_array_equal(sample.coarse_sem_seg.data, value)


def seg_dataset(img_dir):
    return SimpleNamespace(metainfo=dict(classes=CLASSES), data_prefix=dict(img_path=img_dir))


def write_image(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((HEIGHT, WIDTH, 3), 7, np.uint8))
    return path


def files_under(root):
    return {osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def test_label_maps_keep_the_image_folder_layout_and_outside_images_their_stem(tmp_path):
    img_dir = str(tmp_path / 'data' / 'img')
    paths = [write_image(osp.join(img_dir, 'a', 'x.jpg')),
             write_image(osp.join(img_dir, 'b', 'x.png')),
             write_image(osp.join(img_dir, 'sub dir', '.records', '..y.png')),
             write_image(str(tmp_path / 'elsewhere' / 'z.png'))]
    out_dir = tmp_path / 'data' / 'out'
    export = PseudoLabelExport(str(out_dir), seg_dataset(img_dir), 'r', RefineOptions(),
                               LoopCounts(), True)
    for path in paths:
        sample = seg_sample(path)
        reused, key = export.read_back(sample)
        export.write(sample, key)
    pngs = sorted(f for f in files_under(str(out_dir)) if not f.startswith('.records'))
    weird = [osp.join(file_key('sub dir'), file_key('.records'), file_key('..y') + '.png')]
    assert pngs == sorted(['a/x.png', 'b/x.png', 'z.png'] + weird)
    assert all(not part.startswith('.') for png in pngs for part in png.split('/'))
    records = sorted(f for f in files_under(str(out_dir)) if f.startswith('.records'))
    assert records == sorted(osp.join('.records', p[:-4] + '.json') for p in pngs)


def test_two_images_of_one_stem_outside_the_image_folder_are_refused_naming_both(tmp_path):
    first = write_image(str(tmp_path / 'one' / 'x.png'))
    second = write_image(str(tmp_path / 'two' / 'x.png'))
    export = PseudoLabelExport(str(tmp_path / 'out'), seg_dataset(str(tmp_path / 'img')), 'r',
                               RefineOptions(), LoopCounts(), True)
    reused, key = export.read_back(seg_sample(first))
    export.write(seg_sample(first), key)
    before = files_under(str(tmp_path))
    message = f'images {first} and {second} would both be exported as {tmp_path}/out/x.png'
    with pytest.raises(ValueError, match=re.escape(message)):
        export.read_back(seg_sample(second))
    with pytest.raises(ValueError, match='rename one or put them under that folder'):
        export.write(seg_sample(second), key)
    assert files_under(str(tmp_path)) == before
    export.read_back(seg_sample(first))  # the same image again is no collision


def test_ids_one_and_string_one_are_refused_naming_both_images(tmp_path, image):
    export, _ = make_export(tmp_path)
    reused, key = export.read_back(det_sample(image))  # img_id=1
    export.write(det_sample(image), key)
    before = files_under(str(tmp_path))
    other = det_sample(image)
    other.set_metainfo(dict(img_id='1'))
    with pytest.raises(ValueError, match=r"img_id=1 \(.*0001.png\) and img_id='1' \(.*\) would "
                       'both be exported as .*parts/1.json: .*give each image of the dataset '
                       'an id of its own'):
        export.read_back(other)
    assert files_under(str(tmp_path)) == before


def test_ids_that_look_like_paths_write_nothing_outside_out_dir(tmp_path, image):
    ids = ['../../x', '/tmp/x', '.records', '', 'a/b', 'a_b', 'parts/../../y', 7]
    out_dir = tmp_path / 'deep' / 'out'
    before = files_under(str(tmp_path))
    export, _ = make_export(out_dir)
    for img_id in ids:
        sample = det_sample(image)
        sample.set_metainfo(dict(img_id=img_id))
        reused, key = export.read_back(sample)
        export.write(sample, key)
    export.finish(SimpleNamespace(info=lambda msg: None))
    new = files_under(str(tmp_path)) - before
    assert all(f.startswith(osp.join('deep', 'out') + os.sep) for f in new), new
    parts = {f for f in files_under(str(out_dir)) if f.startswith('parts')}
    assert parts == {osp.join('parts', file_key(i) + '.json') for i in ids}
    assert len(parts) == len(ids)  # 'a/b' and 'a_b' stay apart
    coco = json.load(open(out_dir / 'instances.json'))
    assert sorted(map(str, (im['id'] for im in coco['images']))) == sorted(map(str, ids))


def test_two_images_of_one_stem_in_one_sub_folder_are_refused_naming_both(tmp_path):
    img_dir = str(tmp_path / 'img')
    first, second = (write_image(osp.join(img_dir, 'a', name)) for name in ('x.jpg', 'x.png'))
    export = PseudoLabelExport(str(tmp_path / 'out'), seg_dataset(img_dir), 'r',
                               RefineOptions(), LoopCounts(), True)
    export.read_back(seg_sample(first))
    message = (f'images {first} and {second} would both be exported as {tmp_path}/out/a/x.png: '
               'their paths under the image folder differ only in the extension; rename one')
    with pytest.raises(ValueError, match=re.escape(message)):
        export.read_back(seg_sample(second))


@pytest.mark.parametrize('where', ['is', 'inside', 'contains', 'ann_file', 'concat'])
def test_an_export_folder_on_the_datasets_inputs_is_refused_at_once(tmp_path, where):
    """The export is never written where the loop reads its images, label maps
    or annotation file (it would overwrite them or be read back as input)."""
    images, other = tmp_path / 'data' / 'images', tmp_path / 'elsewhere'
    images.mkdir(parents=True)
    dataset = SimpleNamespace(metainfo=dict(classes=('a', )), data_prefix=dict(img=str(images)),
                              ann_file=str(tmp_path / 'data' / 'instances.json'))
    out_dir = {'is': images, 'inside': images / 'pseudo', 'contains': tmp_path / 'data',
               'ann_file': tmp_path / 'data', 'concat': images}[where]
    if where == 'ann_file':  # the json alone lies in the export folder
        dataset.data_prefix = dict(img=str(other))
    if where == 'concat':
        dataset = SimpleNamespace(metainfo=dataset.metainfo, datasets=[
            SimpleNamespace(data_prefix=dict(img=str(other))), dataset])
    before = sorted(p for p in tmp_path.rglob('*'))
    with pytest.raises(ValueError, match='out_dir .* the dataset.s .*another folder'):
        PseudoLabelExport(str(out_dir), dataset, 'r', RefineOptions(), LoopCounts(), reuse=True)
    assert sorted(p for p in tmp_path.rglob('*')) == before
    PseudoLabelExport(str(other / 'pseudo'), SimpleNamespace(
        metainfo={}, data_prefix=dict(img=str(images))), 'r', RefineOptions(), LoopCounts(),
        reuse=True)  # apart: accepted
