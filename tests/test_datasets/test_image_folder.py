# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""ImageFolderDetDataset / ImageFolderSegDataset: a folder of images without
annotations as the prediction set of mmdet and mmseg loops."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmsamrefiner.datasets.image_folder import list_image_files, normalize_extensions


@pytest.fixture
def folder(tmp_path):
    """b.JPG, a.png, c.jpeg, a text file and a sub-folder with an image."""
    root = tmp_path / 'images'
    (root / 'sub').mkdir(parents=True)
    for name in ('b.JPG', 'a.png', 'c.jpeg', 'sub/d.png'):
        cv2.imwrite(str(root / name), np.full((6, 8, 3), 9, np.uint8))
    (root / 'notes.txt').write_text('not an image')
    return str(root)


def build(registry_scope, cfg):
    from mmengine.registry import DATASETS, DefaultScope

    import mmsamrefiner  # noqa: F401 - what custom_imports does
    with DefaultScope.overwrite_default_scope(registry_scope):
        return DATASETS.build(cfg)


def test_images_are_found_by_extension_in_any_case_and_sorted(folder):
    assert list_image_files(folder) == ['a.png', 'b.JPG', 'c.jpeg']  # not sub/, not .txt
    assert list_image_files(folder, ['PNG']) == ['a.png']
    assert normalize_extensions('jpg') == ('.jpg', )


def test_a_missing_or_empty_folder_or_no_extension_is_refused(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        list_image_files(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match=r"no images in .*empty.*\['.jpg'"):
        list_image_files(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='extensions must be'):
        list_image_files(folder, [])


def test_det_dataset_gives_sorted_images_stable_ids_and_the_config_classes(folder):
    cfg = dict(type='ImageFolderDetDataset', data_root=folder, metainfo=dict(classes=('x', 'y')),
               test_mode=True)
    dataset = build('mmdet', cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [(osp.basename(i['img_path']), i['img_id']) for i in infos] == [
        ('a.png', 1), ('b.JPG', 2), ('c.jpeg', 3)]
    assert all(i['instances'] == [] for i in infos)
    assert dataset.metainfo['classes'] == ('x', 'y')
    again = build('mmdet', dict(cfg, data_root=None, data_prefix=dict(img=folder)))
    assert [again.get_data_info(i)['img_id'] for i in range(3)] == [1, 2, 3]
    item = dataset[1]  # through the (empty) pipeline
    assert item['img_id'] == 2 and item['img_path'].endswith('b.JPG')


def test_det_dataset_refuses_no_classes_an_ann_file_and_an_empty_folder(tmp_path, folder):
    with pytest.raises(ValueError, match='needs the class names'):
        build('mmdet', dict(type='ImageFolderDetDataset', data_root=folder))
    with pytest.raises(ValueError, match="ann_file='a.json'"):
        build('mmdet', dict(type='ImageFolderDetDataset', data_root=folder, ann_file='a.json',
                            metainfo=dict(classes=('x', ))))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images in'):
        build('mmdet', dict(type='ImageFolderDetDataset', data_root=str(tmp_path / 'empty'),
                            metainfo=dict(classes=('x', ))))


def test_seg_dataset_without_and_with_label_maps(tmp_path, folder):
    cfg = dict(type='ImageFolderSegDataset', data_prefix=dict(img_path=folder),
               metainfo=dict(classes=('background', 'x')), test_mode=True)
    dataset = build('mmseg', cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [osp.basename(i['img_path']) for i in infos] == ['a.png', 'b.JPG', 'c.jpeg']
    assert all('seg_map_path' not in i for i in infos)

    labels = tmp_path / 'labels'
    labels.mkdir()
    for stem in ('a', 'b'):
        cv2.imwrite(str(labels / f'{stem}.png'), np.zeros((6, 8), np.uint8))
    with_maps = dict(cfg, data_prefix=dict(img_path=folder, seg_map_path=str(labels)))
    with pytest.raises(ValueError, match=r"1 of the 3 images .* no label map .*c\.png"):
        build('mmseg', with_maps)
    cv2.imwrite(str(labels / 'c.png'), np.zeros((6, 8), np.uint8))
    dataset = build('mmseg', with_maps)
    assert [osp.basename(dataset.get_data_info(i)['seg_map_path']) for i in range(3)] == [
        'a.png', 'b.png', 'c.png']


def test_seg_dataset_finds_the_exports_safe_names_of_odd_image_names(tmp_path):
    """An image whose stem is not a plain name (a space, ``..``) has its label
    map under the name the hook's export gives it (``file_key`` of the stem)."""
    from mmsamrefiner.utils.file_keys import file_key
    images, labels = tmp_path / 'images', tmp_path / 'labels'
    images.mkdir()
    labels.mkdir()
    for stem in ('my image', 'plain', '..hidden'):
        cv2.imwrite(str(images / f'{stem}.png'), np.zeros((6, 8, 3), np.uint8))
        cv2.imwrite(str(labels / f'{file_key(stem)}.png'), np.zeros((6, 8), np.uint8))
    dataset = build('mmseg', dict(type='ImageFolderSegDataset',
                                  data_prefix=dict(img_path=str(images),
                                                   seg_map_path=str(labels)),
                                  metainfo=dict(classes=('background', 'x')), test_mode=True))
    names = sorted(osp.basename(dataset.get_data_info(i)['seg_map_path']) for i in range(3))
    assert names == sorted([file_key('my image') + '.png', 'plain.png',
                            file_key('..hidden') + '.png'])
    assert 'my_image-' in names[0] + names[1] + names[2]


def test_seg_dataset_refuses_images_sharing_a_stem_and_its_unused_arguments(tmp_path, folder):
    cv2.imwrite(osp.join(folder, 'a.jpg'), np.zeros((6, 8, 3), np.uint8))
    cfg = dict(type='ImageFolderSegDataset', data_prefix=dict(img_path=folder),
               metainfo=dict(classes=('background', 'x')), test_mode=True)
    with pytest.raises(ValueError, match=r"share a file stem.*\['a'\]"):
        build('mmseg', cfg)
    with pytest.raises(ValueError, match="takes no img_suffix"):
        build('mmseg', dict(cfg, img_suffix='.jpg'))
    with pytest.raises(ValueError, match='needs the class names'):
        build('mmseg', dict(cfg, metainfo=None))


def test_scoped_names_build_too(folder):
    from mmsamrefiner.registry import DATASETS
    cls = DATASETS.get('mmsamrefiner.ImageFolderDetDataset')
    assert cls.__name__ == 'ImageFolderDetDataset'
