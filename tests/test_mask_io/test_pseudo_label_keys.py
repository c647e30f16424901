# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Pseudo-label exports carry the key of what they were computed from, and
read back only for an equal key."""
import json

import numpy as np

from mmsamrefiner.mask_io import CocoInstanceWriter, LabelMapWriter

KEY = dict(prediction='p1', image='file:/x.png|10|5', refiner='r', settings='s')


def test_a_coco_part_reads_back_only_for_its_own_key(tmp_path):
    writer = CocoInstanceWriter(str(tmp_path), classes=['a', 'b'])
    masks = np.zeros((1, 6, 7), bool)
    masks[0, 1:3, 2:5] = True
    writer.write(4, 'x.png', masks, np.array([1]), np.array([0.5]), key=KEY)
    assert writer.stored_key(4) == KEY
    np.testing.assert_array_equal(writer.read(4, key=dict(KEY))['masks'], masks)
    assert writer.read(4, key=dict(KEY, prediction='p2')) is None
    assert writer.read(5, key=KEY) is None  # no part
    np.testing.assert_array_equal(writer.read(4)['masks'], masks)  # no key asked: as before
    coco = json.load(open(writer.merge()))  # the key stays out of the merged file
    assert set(coco) == {'images', 'annotations', 'categories'} and 'key' not in coco['images'][0]

    writer.write(6, 'y.png', masks, np.array([0]), np.array([0.5]))  # written without a key
    assert writer.stored_key(6) is None and writer.read(6, key=KEY) is None


def test_a_label_map_reads_back_only_with_its_own_sidecar(tmp_path):
    writer = LabelMapWriter(str(tmp_path))
    label_map = np.zeros((5, 6), np.int64)
    label_map[1:3, 2:4] = 2
    writer.write('/data/img_01.jpg', label_map, key=KEY)
    assert writer.key_path('/data/img_01.jpg') == str(tmp_path / 'img_01.key.json')
    assert writer.stored_key('img_01.jpg') == KEY
    np.testing.assert_array_equal(writer.read('img_01.jpg', key=KEY), label_map)
    assert writer.read('img_01.jpg', key=dict(KEY, refiner='r2')) is None

    other = label_map.copy()
    other[0, 0] = 1  # a PNG of another write beside this sidecar
    writer.write('/tmp/img_01.png', other)  # no key: the sidecar goes
    assert writer.stored_key('img_01.jpg') is None
    assert writer.read('img_01.jpg', key=KEY) is None
    writer.write('img_01.jpg', label_map, key=KEY)
    import cv2
    cv2.imwrite(writer.path('img_01.jpg'), other.astype(np.uint8))  # torn: PNG replaced only
    assert writer.read('img_01.jpg', key=KEY) is None
    np.testing.assert_array_equal(writer.read('img_01.jpg'), other)
    assert writer.read('missing.jpg', key=KEY) is None
