# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``ImageFolderDetDataset``: the images of a folder, without annotations, as
an mmdet dataset (the prediction set of a pseudo-labelling test loop)."""
import os.path as osp
from typing import List, Sequence

from mmdet.datasets import BaseDetDataset

from mmsamrefiner.registry import DATASETS

from .image_folder import IMAGE_EXTENSIONS, list_image_files, normalize_extensions


@DATASETS.register_module()
class ImageFolderDetDataset(BaseDetDataset):
    """The images directly in ``data_root``/``data_prefix['img']``, for mmdet
    test loops that predict on images nobody annotated (e.g. with
    :class:`SAMRefinerHook` exporting the refined predictions as COCO
    pseudo-labels).

    Images are found by extension (any case) and sorted by file name; image
    ``i`` of that order (0-based) gets ``img_id = i + 1``, so the same folder
    always gives the same ids (adding or removing a file renumbers those
    after it).  Each item is ``dict(img_path=..., img_id=int, instances=[])``;
    the pipeline reads the image (``LoadImageFromFile``, BGR).

    Args:
        metainfo (dict): must name the classes the model predicts,
            ``dict(classes=(...))`` (the exported COCO categories).
        extensions (Sequence[str]): file extensions taken as images.
        **kwargs: :class:`mmdet.datasets.BaseDetDataset`'s (``data_root``,
            ``data_prefix=dict(img=...)``, ``pipeline``, ``test_mode``, ...);
            ``ann_file`` must stay empty.

    Raises:
        ValueError: no classes in ``metainfo``, an ``ann_file``, or a folder
            without images; FileNotFoundError: a missing folder.
    """

    def __init__(self, *args, extensions: Sequence[str] = IMAGE_EXTENSIONS, **kwargs) -> None:
        self.extensions = normalize_extensions(extensions)
        if kwargs.get('ann_file'):
            raise ValueError('ImageFolderDetDataset reads no annotations, got ann_file='
                             f"{kwargs['ann_file']!r} (use CocoDataset for annotated images)")
        if not (kwargs.get('metainfo') or {}).get('classes'):
            raise ValueError('ImageFolderDetDataset needs the class names the model predicts: '
                             "metainfo=dict(classes=('person', ...)), got metainfo="
                             f"{kwargs.get('metainfo')!r}")
        kwargs.setdefault('data_prefix', dict(img=''))
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img', '') or self.data_root or ''
        return [dict(img_path=osp.join(folder, name), img_id=index, instances=[],
                     seg_map_path=None)
                for index, name in enumerate(list_image_files(folder, self.extensions), 1)]
