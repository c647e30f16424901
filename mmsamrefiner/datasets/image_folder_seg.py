# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``ImageFolderSegDataset``: the images of a folder as an mmseg dataset,
without label maps (the prediction set of a pseudo-labelling test loop) or
with the label maps exported for them (a student's pseudo-labelled part)."""
import collections
import os.path as osp
from typing import List, Sequence

from mmseg.datasets import BaseSegDataset

from mmsamrefiner.registry import DATASETS
from mmsamrefiner.utils.file_keys import file_key

from .image_folder import IMAGE_EXTENSIONS, list_image_files, normalize_extensions


@DATASETS.register_module()
class ImageFolderSegDataset(BaseSegDataset):
    """The images directly in ``data_root``/``data_prefix['img_path']``, for
    mmseg loops.

    Images are found by extension (any case) and sorted by file name.  Without
    ``data_prefix['seg_map_path']`` the items have no label map (predict only,
    e.g. with :class:`SAMRefinerHook` exporting refined label maps as
    ``<out_dir>/<key>.png``); with it, image ``<stem>.<ext>`` gets the label
    map ``<seg_map_path>/<key><seg_map_suffix>`` (the export's layout), where
    ``key`` is the stem for plain names (letters, digits, ``_.-``) and
    :func:`~mmsamrefiner.utils.file_keys.file_key` of it for any other
    (``my image`` -> ``my_image-<8 hex>``), so the same folder with an export
    trains a student.

    Args:
        metainfo (dict): must name the classes, ``dict(classes=(...))``.
        extensions (Sequence[str]): file extensions taken as images.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset`'s (``data_root``,
            ``data_prefix``, ``seg_map_suffix`` (default ``'.png'``),
            ``pipeline``, ``reduce_zero_label``, ...); ``ann_file`` and
            ``img_suffix`` are not taken.

    Raises:
        ValueError: no classes in ``metainfo``, ``ann_file`` or
            ``img_suffix`` given, a folder without images, two images with
            one stem (their label maps would be one file), or label maps
            missing for some images; FileNotFoundError: a missing folder.
    """

    def __init__(self, *args, extensions: Sequence[str] = IMAGE_EXTENSIONS, **kwargs) -> None:
        self.extensions = normalize_extensions(extensions)
        for unused in ('ann_file', 'img_suffix'):
            if kwargs.get(unused):
                raise ValueError(f'ImageFolderSegDataset takes no {unused} (images are found '
                                 f'by extensions={list(self.extensions)}), got {unused}='
                                 f'{kwargs[unused]!r}')
        if not (kwargs.get('metainfo') or {}).get('classes'):
            raise ValueError("ImageFolderSegDataset needs the class names: metainfo=dict("
                             f"classes=('background', ...)), got metainfo="
                             f"{kwargs.get('metainfo')!r}")
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '') or self.data_root or ''
        seg_map_dir = self.data_prefix.get('seg_map_path') or None
        names = list_image_files(img_dir, self.extensions)
        stems = collections.Counter(osp.splitext(name)[0] for name in names)
        shared = sorted(stem for stem, count in stems.items() if count > 1)
        if shared:
            raise ValueError(f'images in {img_dir!r} share a file stem, so their label maps '
                             f'would be one file: {shared[:5]} (rename them)')
        data_list = []
        for name in names:
            data_info = dict(img_path=osp.join(img_dir, name), label_map=self.label_map,
                             reduce_zero_label=self.reduce_zero_label, seg_fields=[])
            if seg_map_dir is not None:
                data_info['seg_map_path'] = osp.join(
                    seg_map_dir, file_key(osp.splitext(name)[0]) + self.seg_map_suffix)
            data_list.append(data_info)
        if seg_map_dir is not None:
            missing = [d['seg_map_path'] for d in data_list if not osp.isfile(d['seg_map_path'])]
            if missing:
                raise ValueError(f'{len(missing)} of the {len(data_list)} images in {img_dir!r} '
                                 f'have no label map in {seg_map_dir!r}, e.g. {missing[:3]} '
                                 '(was the pseudo-labelling run on this folder finished?)')
        return data_list
