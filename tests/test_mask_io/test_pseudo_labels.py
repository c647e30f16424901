# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Pseudo-label writers: COCO RLE parts merge into a readable COCO file, PNG
label maps round-trip, each write returns the digests its record keeps,
writes are atomic."""
import json
import os

import numpy as np
import pytest

from mmsamrefiner.mask_io import PseudoLabelCocoWriter, PseudoLabelMapWriter, decode_rle, encode_rle
from mmsamrefiner.utils.atomic import atomic_write_bytes
from mmsamrefiner.utils.digest import digest_file
from mmsamrefiner.utils.mask_cache import MaskCache, content_key


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 17, 23)) > 0.5
    rles = encode_rle(masks)
    assert all(isinstance(r['counts'], str) for r in rles)
    json.dumps(rles)  # JSON-ready
    np.testing.assert_array_equal(decode_rle(rles, 17, 23), masks)
    assert decode_rle([], 17, 23).shape == (0, 17, 23)


def test_coco_writer_parts_merge_and_read_back(tmp_path):
    writer = PseudoLabelCocoWriter(str(tmp_path), classes=['a', 'b'], cat_ids=[7, 9])
    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:9] = True
    masks[1, 6:, :2] = True
    outputs = writer.write('3', 3, 'x.jpg', masks, np.array([1, 0]), np.array([0.9, 0.4]))
    assert outputs == {'parts/3.json': digest_file(str(tmp_path / 'parts' / '3.json'))}
    writer.write('1', 1, 'y.jpg', masks[:0], np.zeros(0, int), np.zeros(0))
    assert writer.has('3') and writer.has('1') and not writer.has('2')
    assert writer.read('2') is None
    back = writer.read('3')
    np.testing.assert_array_equal(back['masks'], masks)
    np.testing.assert_array_equal(back['labels'], [1, 0])
    np.testing.assert_allclose(back['scores'], [0.9, 0.4])

    coco = json.load(open(writer.merge()))
    assert [im['id'] for im in coco['images']] == [1, 3]
    assert [a['id'] for a in coco['annotations']] == [1, 2]
    first = coco['annotations'][0]
    assert first['category_id'] == 9 and first['image_id'] == 3
    assert first['bbox'] == [3.0, 2.0, 6.0, 3.0] and first['area'] == 18
    assert coco['categories'] == [dict(id=7, name='a'), dict(id=9, name='b')]
    from pycocotools.coco import COCO
    api = COCO(writer.merge())  # pycocotools reads it
    assert api.annToMask(api.loadAnns([1])[0]).sum() == 18


def test_coco_writer_merge_leaves_out_instances_under_score_thr_but_no_image(tmp_path):
    writer = PseudoLabelCocoWriter(str(tmp_path), classes=['a'], score_thr=0.5)
    masks = np.ones((3, 4, 4), bool)
    writer.write('1', 1, 'x.jpg', masks, np.zeros(3, int), np.array([0.9, 0.5, 0.49]))
    writer.write('2', 2, 'y.jpg', masks[:1], np.zeros(1, int), np.array([0.1]))
    coco = json.load(open(writer.merge()))
    assert [a['score'] for a in coco['annotations']] == [0.9, 0.5]  # 0.5 itself is kept
    assert [a['id'] for a in coco['annotations']] == [1, 2]
    assert [im['id'] for im in coco['images']] == [1, 2] and writer.num_left_out == 2
    assert len(writer.read('1')['masks']) == 3  # the part keeps every instance
    writer = PseudoLabelCocoWriter(str(tmp_path), classes=['a'])
    coco = json.load(open(writer.merge()))
    assert len(coco['annotations']) == 4 and writer.num_left_out == 0
    coco = json.load(open(writer.merge(['2'])))  # the parts of some images only
    assert [im['id'] for im in coco['images']] == [2] and len(coco['annotations']) == 1


def test_coco_writer_needs_one_cat_id_per_class(tmp_path):
    with pytest.raises(ValueError, match='3 cat_ids for 2 classes'):
        PseudoLabelCocoWriter(str(tmp_path), ['a', 'b'], [1, 2, 3])


def test_label_map_writer_round_trip(tmp_path):
    writer = PseudoLabelMapWriter(str(tmp_path))
    label_map = np.arange(12, dtype=np.int64).reshape(3, 4) * 20
    label_map[0, 0] = 255
    assert writer.write('img_01', label_map) == {
        'img_01.png': digest_file(str(tmp_path / 'img_01.png'))}
    np.testing.assert_array_equal(writer.read('img_01')['label_map'], label_map)
    wide = label_map * 200  # over 255: a 16-bit PNG
    writer.write('img_02', wide)
    np.testing.assert_array_equal(writer.read('img_02')['label_map'], wide)
    assert writer.read('img_03') is None
    with pytest.raises(ValueError, match=r'\(H, W\)'):
        writer.write('a', label_map[None])
    with pytest.raises(ValueError, match='do not fit'):
        writer.write('a', label_map - 100)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = str(tmp_path / 'out.bin')
    atomic_write_bytes(path, b'old')

    with pytest.raises(TypeError):
        atomic_write_bytes(path, object())  # fails while writing
    assert open(path, 'rb').read() == b'old'
    assert os.listdir(tmp_path) == ['out.bin']  # no temporary left behind


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    path = tmp_path / 'out.bin'
    atomic_write_bytes(str(path), b'data')
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_mask_cache_keys_on_content(tmp_path):
    cache = MaskCache(str(tmp_path))
    image = np.zeros((4, 5, 3), np.uint8)
    masks = np.zeros((1, 4, 5), bool)
    key = content_key('settings', image, masks)
    assert cache.get(key) is None
    cache.put(key, refined=masks | True)
    assert cache.get(key)['refined'].all()
    other = masks.copy()
    other[0, 0, 0] = True
    assert content_key('settings', image, other) != key
    assert content_key('settings2', image, masks) != key
    assert content_key('settings', image.reshape(5, 4, 3), masks) != key  # shape counts
    with open(cache.path(key), 'wb') as f:  # a damaged entry is a miss
        f.write(b'garbage')
    assert cache.get(key) is None


def test_coco_writer_refuses_labels_outside_the_classes(tmp_path):
    writer = PseudoLabelCocoWriter(str(tmp_path), classes=['a', 'b'])
    with pytest.raises(ValueError, match='labels must index the 2 classes, got 0..5'):
        writer.write('1', 1, 'x.jpg', np.zeros((2, 4, 4), bool), np.array([0, 5]), np.ones(2))
    assert not writer.has('1')
