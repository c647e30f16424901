# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Reading coarse collections and writing refined ones: clear errors for bad
files and records, input digests, records checked against their outputs,
the output lock, truncated JPEGs."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmsamrefiner.mask_io.coarse_masks import (
    AnnotationError,
    CocoInstances,
    CollectionError,
    decode_segmentation,
)
from mmsamrefiner.mask_io.records import (
    INPUT_CHANGED,
    NEW,
    OUTPUT_CHANGED,
    RETRY,
    SETTINGS_CHANGED,
    OutputBusyError,
    OutputLock,
    RecordBook,
)
from mmsamrefiner.mask_io.refined_masks import (
    PseudoLabelCocoWriter,
    PseudoLabelMapWriter,
    RefinedBinaryMaskWriter,
    RefinedCocoWriter,
    RefinedLabelMapWriter,
)
from mmsamrefiner.refiner.inputs import check_complete_jpeg, load_rgb_image
from mmsamrefiner.synthetic.coco_collection import write_coco_collection
from mmsamrefiner.utils.digest import digest_file


def write(path, obj):
    with open(path, 'w') as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


@pytest.mark.parametrize('content,message', [
    ([], 'holds a JSON list'),
    ('"text"', 'holds a JSON str'),
    ({}, 'has no "images" (it has nothing)'),
    ({'info': {}, 'licenses': []}, 'has no "images" (it has "info", "licenses")'),
    ({'shapes': [], 'imagePath': 'a.jpg'}, 'is a labelme file'),
    ('{"images": [', 'is not valid JSON (Expecting value at line 1, column 13)'),
    ({'images': {}}, 'must be lists'),
    ({'images': [{'file_name': 'a.png'}]}, 'entry 0 of "images"'),
    ({'images': [{'id': 1, 'file_name': 'a.png'}], 'annotations': [{'id': 1}]},
     'entry 0 of "annotations"'),
    ({'images': [{'id': 1, 'file_name': 'a.png'}],
      'annotations': [{'id': 1, 'image_id': 7}]}, 'refers to image 7'),
    ({'images': [{'id': 1, 'file_name': 'a.png'}, {'id': 1, 'file_name': 'b.png'}]},
     'image id 1 is used by more than one entry'),
])
def test_a_file_that_is_not_a_coco_collection_is_refused(tmp_path, content, message):
    path = write(tmp_path / 'x.json', content if isinstance(content, str) else
                 json.dumps(content))
    with pytest.raises(CollectionError) as info:
        CocoInstances(path, str(tmp_path))
    assert message in str(info.value) and path in str(info.value)


def test_a_binary_file_is_not_json(tmp_path):
    path = tmp_path / 'x.json'
    path.write_bytes(b'\xff\xd8\xff\xe0binary')
    with pytest.raises(CollectionError, match='not a text'):
        CocoInstances(str(path), str(tmp_path))


def test_duplicate_annotation_ids_are_found(tmp_path):
    ann_file = write_coco_collection(str(tmp_path), num_images=2)
    coco = json.load(open(ann_file))
    coco['annotations'][-1]['id'] = coco['annotations'][0]['id']
    source = CocoInstances(write(ann_file, coco), str(tmp_path / 'images'))
    assert source.duplicate_ids == {coco['annotations'][0]['id']: [1, 2]}
    with pytest.raises(CollectionError, match='1 annotation id.* used more than once'):
        source.check_unique_ids()


def test_malformed_annotations_name_themselves(tmp_path):
    images = [dict(id=i, file_name=f'{i}.png', height=8, width=10) for i in (1, 2, 3, 4, 5)]
    square = [[1, 1, 6, 1, 6, 6, 1, 6]]
    anns = [dict(id=10, image_id=1, segmentation=square),
            dict(id=11, image_id=2, segmentation=[[1, 1, 5, 5]]),
            dict(id=12, image_id=3, segmentation=dict(size=[4, 4], counts='0`0')),
            dict(image_id=4, segmentation=square),
            dict(id=14, image_id=5, segmentation='oops')]
    source = CocoInstances(write(tmp_path / 'c.json', dict(images=images, annotations=anns)),
                           str(tmp_path))
    items = source.items()
    masks, ids = source.load(items[0])
    assert ids == [10] and masks.shape == (1, 8, 10) and masks.any()
    expected = [(11, 'annotation 11: polygon 0 has 2 point(s); a polygon needs at least 3'),
                (12, 'annotation 12: its RLE has size [4, 4] (height, width) but the image '
                     'is 8x10'),
                (None, 'annotation at position 3 of "annotations" (image 4) has no "id"'),
                (14, 'annotation 14: segmentation must be polygons')]
    for item, (ann_id, message) in zip(items[1:], expected):
        with pytest.raises(AnnotationError) as info:
            source.load(item)
        assert info.value.ann_id == ann_id and message in str(info.value)


@pytest.mark.parametrize('segmentation,message', [
    ([[1, 2, 3]], 'odd number of coordinates'),
    ([[1, 'a', 3, 4, 5, 6]], 'not a list of numbers'),
    ([1, 2, 3, 4, 5, 6], 'not a list of numbers'),
    ([[]], 'has 0 point(s)'),
    (dict(size=[8, 10], counts='!!!'), 'cannot be decoded'),
    (dict(size=[8, 10]), 'segmentation must be polygons'),
])
def test_decode_segmentation_says_what_is_wrong(segmentation, message):
    with pytest.raises(ValueError) as info:
        decode_segmentation(segmentation, 8, 10)
    assert message in str(info.value)


def test_input_digest_follows_annotations_and_image_file(tmp_path):
    ann_file = write_coco_collection(str(tmp_path), num_images=2)
    img_dir = str(tmp_path / 'images')
    before = [CocoInstances(ann_file, img_dir).input_digest(i)
              for i in CocoInstances(ann_file, img_dir).items()]
    source = CocoInstances(ann_file, img_dir)
    assert [source.input_digest(i) for i in source.items()] == before  # stable
    coco = json.load(open(ann_file))
    coco['annotations'][-1]['segmentation'][0][0] += 1  # an annotation of image 2
    source = CocoInstances(write(ann_file, coco), img_dir)
    after = [source.input_digest(i) for i in source.items()]
    assert after[0] == before[0] and after[1] != before[1]
    path = osp.join(img_dir, '0000.png')
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10 ** 9))  # image 1 touched
    assert source.input_digest(source.items()[0]) != after[0]
    os.remove(path)
    assert source.input_digest(source.items()[0]) not in (before[0], after[0])


def test_record_check_reasons(tmp_path):
    book = RecordBook(str(tmp_path))
    (tmp_path / 'a.png').write_bytes(b'png')
    from mmsamrefiner.utils.digest import digest_bytes
    assert book.check('a', 'in', 'set') == (None, NEW)
    book.write('a', status='refined', input='in', settings='set',
               outputs={'a.png': digest_bytes(b'png')})
    assert book.check('a', 'in', 'set')[1] == ''
    assert book.check('a', 'other', 'set') == (None, INPUT_CHANGED)
    assert book.check('a', 'in', 'other') == (None, SETTINGS_CHANGED)
    (tmp_path / 'a.png').write_bytes(b'edited')
    assert book.check('a', 'in', 'set') == (None, OUTPUT_CHANGED)
    os.remove(tmp_path / 'a.png')
    assert book.check('a', 'in', 'set') == (None, OUTPUT_CHANGED)
    for transient, why in ((True, RETRY), (False, '')):
        book.write('a', status='failed', transient=transient, input='in', settings='set',
                   outputs={})
        assert book.check('a', 'in', 'set')[1] == why
    book.write('b', status='refined')  # a record of an older version: redone
    assert book.check('b', 'in', 'set') == (None, INPUT_CHANGED)
    (tmp_path / '.records' / 'c.json').write_text('{"broken')
    assert book.check('c', 'in', 'set') == (None, NEW)


def test_the_output_lock_admits_one_run(tmp_path):
    out = str(tmp_path / 'out')
    with OutputLock(out):
        with pytest.raises(OutputBusyError, match=f'pid {os.getpid()}'):
            OutputLock(out).acquire()
    with OutputLock(out):  # released
        pass
    (tmp_path / 'file').write_text('')
    with pytest.raises(NotADirectoryError):
        OutputLock(str(tmp_path / 'file' / 'out')).acquire()


def test_binary_writer_removes_masks_no_longer_in_the_input(tmp_path):
    writer = RefinedBinaryMaskWriter(str(tmp_path))
    masks = np.zeros((2, 4, 4), bool)
    writer.write('a', ['0.png', '1.png'], masks)
    outputs = writer.write('a', ['1.png'], masks[:1])
    assert sorted(os.listdir(tmp_path / 'a')) == ['1.png'] and list(outputs) == ['a/1.png']
    assert writer.discard('a') == {} and os.listdir(tmp_path / 'a') == []


def test_coco_parts_apply_to_their_own_image_only(tmp_path):
    coco = dict(images=[dict(id=1), dict(id=2)],
                annotations=[dict(id=5, image_id=1, segmentation=[[0]]),
                             dict(id=5, image_id=2, segmentation=[[1]]),
                             dict(image_id=2, segmentation=[[2]])])
    writer = RefinedCocoWriter(str(tmp_path / 'out.json'), coco)
    mask = np.zeros((1, 3, 3), bool)
    writer.write('1', [5], mask, np.ones(1))
    writer.write('2', [5], mask, np.ones(1))  # an earlier run's part ...
    assert writer.discard('2') == {}  # ... removed: image 2's annotations pass through
    merged = json.load(open(writer.merge()))
    assert merged['annotations'][0]['refined_score'] == 1.0
    assert merged['annotations'][1:] == coco['annotations'][1:]


def writers(root):
    """Each writer of refined masks, the arguments of one ``write`` and what
    ``read`` gives back."""
    masks = np.zeros((2, 3, 4), bool)
    masks[0, 1, 1] = masks[1, 2, 3] = True
    scores = np.array([0.5, 0.25], np.float32)
    stability = np.array([0.75, 0.125], np.float32)
    coarse_iou = np.array([1.0, 0.5], np.float32)
    label_map = np.arange(12).reshape(3, 4) % 3
    classes = dict(classes=np.array([1, 2]), score=np.array([0.5, 0.25], np.float32))
    rows = [dict(classes=1, score=0.5), dict(classes=2, score=0.25)]
    signals = {'0.png': dict(refined_score=0.5, refined_stability=0.75, refined_coarse_iou=1.0),
               '1.png': dict(refined_score=0.25, refined_stability=0.125,
                             refined_coarse_iou=0.5)}
    return [
        (RefinedCocoWriter(osp.join(root, 'c.json'), dict(images=[], annotations=[])),
         (['7', '8'], masks, scores, stability, coarse_iou),
         dict(ann_ids=['7', '8'], masks=masks, scores=scores, stability=stability,
              coarse_iou=coarse_iou)),
        (RefinedLabelMapWriter(osp.join(root, 'l')), (label_map, None, classes),
         dict(label_map=label_map, palette=None, classes=rows)),
        (RefinedBinaryMaskWriter(osp.join(root, 'b')),
         (['0.png', '1.png'], masks, scores, stability, coarse_iou),
         dict(names=['0.png', '1.png'], masks=masks, signals=signals)),
        (PseudoLabelCocoWriter(osp.join(root, 'p'), ['a', 'b']),
         (7, 'x.jpg', masks, np.array([1, 0]), scores),
         dict(masks=masks, labels=np.array([1, 0]), scores=scores)),
        (PseudoLabelMapWriter(osp.join(root, 'm')), (label_map, classes),
         dict(label_map=label_map)),
    ]


def test_every_writer_keeps_one_protocol(tmp_path):
    """write / has / read / relpath / discard / merge mean the same on each
    writer: what is written is read back, discarded is gone, the outputs
    named are the files written under root, records live under root."""
    for writer, arguments, expected in writers(str(tmp_path)):
        name = type(writer).__name__
        assert not writer.has('k') and writer.read('k') is None, name
        outputs = writer.write('k', *arguments)
        assert writer.has('k') and outputs, name
        for relpath, digest in outputs.items():
            assert relpath.startswith(writer.relpath('k')) or osp.splitext(
                relpath)[0] == osp.splitext(writer.relpath('k'))[0], name
            assert digest_file(osp.join(writer.root, relpath)) == digest, name
        back = writer.read('k')
        assert back.keys() == expected.keys(), name
        for field, value in expected.items():
            if value is None or isinstance(value, (list, dict)):
                assert back[field] == value, (name, field)
            else:
                np.testing.assert_array_equal(back[field], value, err_msg=f'{name} {field}')
        assert writer.records.dir == osp.join(writer.root, '.records'), name
        merged = writer.merge()
        assert merged is None or osp.isfile(merged), name
        assert writer.discard('k') == {} and not writer.has('k'), name
        assert writer.read('k') is None, name
        left = [path for path in outputs if osp.exists(osp.join(writer.root, path))]
        assert not left, (name, left)


def test_a_truncated_jpeg_is_refused_a_whole_one_read(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    data = cv2.imencode('.jpg', image)[1].tobytes()
    whole, trailing, cut = (tmp_path / n for n in ('whole.jpg', 'trailing.jpg', 'cut.jpg'))
    whole.write_bytes(data)
    trailing.write_bytes(data + b'\0\0metadata')  # bytes after the end marker are fine
    cut.write_bytes(data[:len(data) // 2])
    check_complete_jpeg(str(whole))
    check_complete_jpeg(str(trailing))
    np.testing.assert_array_equal(load_rgb_image(str(trailing)), load_rgb_image(str(whole)))
    with pytest.raises(ValueError, match='truncated or damaged JPEG'):
        check_complete_jpeg(str(cut))
    with pytest.raises(ValueError, match='cut.jpg.*truncated'):
        load_rgb_image(str(cut))
    png = tmp_path / 'cut.png'
    png.write_bytes(cv2.imencode('.png', image)[1].tobytes()[:500])
    with pytest.raises(ValueError, match='cannot be read as an image'):
        load_rgb_image(str(png))
