# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Coarse-mask collections on disk, the formats users have, read per image.

Each source lists :class:`CoarseItem` s (one per image, cheap: no pixels read)
and loads one item's masks on demand:

* :class:`CocoInstances`: a COCO-style instance json (polygon, RLE or
  uncompressed RLE segmentations) and its image folder;
* :class:`LabelMaps`: a folder of PNG label maps (palette or grey) and the
  image folder, matched by file stem;
* :class:`BinaryMasks`: per image a folder of binary PNGs, one per instance
  (``<mask_dir>/<image stem>/*.png``, 0/255 or 0/1), and the image folder.

Masks are (N, H, W) bool, label maps (H, W) int64, both in the image's frame.

Problems with the whole collection (a file that is not a COCO json, an image
id that is not an int or a str, a ``file_name`` that is not a non-empty str,
duplicate ids) raise :class:`CollectionError`; a bad record fails only its
image when it is loaded (:class:`AnnotationError` names the annotation).

An item's ``key`` names its outputs and records, so it is never a path: the
:func:`~mmsamrefiner.utils.file_keys.file_key` of the COCO image id or of the
file stem (its ``name``).  Before any pixel is decoded, an image may be refused
(:class:`InputRefused`, which fails that image only): a COCO ``file_name``
outside the image folder (``../``, an absolute path; unless allowed), or more
pixels than a limit (read from the file's header, the COCO record's ``height``
and ``width``, the label map's header).  Each source also
gives :meth:`input_digest` of an item: a digest of everything its refined
masks are computed from (the image's coarse masks or annotations, and the
image file's name, size and modification time: :mod:`mmsamrefiner.utils.digest`),
which binds stored results to their inputs.
"""
import contextlib
import glob
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from numbers import Real
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from mmsamrefiner.utils.background import overridden
from mmsamrefiner.utils.digest import canonical_json, digest_file, file_stamp, hasher
from mmsamrefiner.utils.file_keys import file_key

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')

#: What reading a mask, label map or image file raises when the file is at
#: fault: a missing or unreadable file (``OSError``), content that is not what
#: it should be (``ValueError``, :class:`AnnotationError` and
#: :class:`InputRefused` among them), and PIL's ``DecompressionBombError`` for
#: a file over PIL's own pixel limit (read without ``max_pixels``).
READ_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


class CollectionError(ValueError):
    """The collection as a whole cannot be refined (not COCO, duplicate ids)."""


class InputRefused(ValueError):
    """An image's input is not read at all (its file lies outside the image
    folder, it has more pixels than allowed); fails that image only."""


class AnnotationError(ValueError):
    """One annotation cannot be read; fails its image.  ``ann_id``: its id
    (None when it has none)."""

    def __init__(self, ann_id, message: str):
        super().__init__(message)
        self.ann_id = ann_id


def _file_content_digest(path: str) -> str:
    """Digest of a mask file's content, or ``unreadable:<error>``."""
    try:
        return digest_file(path)
    except OSError as error:
        return f'unreadable:{type(error).__name__}'


@dataclass
class CoarseItem:
    """One image of a coarse-mask collection.

    Attributes:
        key: ``file_key(name)``: file-system safe, never a path, unique in the
            collection (names its outputs and its record).
        img_path: the image.
        meta: format-specific data (COCO: the ``image`` record).
        name: what the key is made from: the COCO image id (int or str) or
            the file stem (label maps, mask folders).
    """
    key: str
    img_path: str
    meta: dict = field(default_factory=dict)
    name: object = None


def find_image(img_dir: str, stem: str) -> str:
    """The image file in ``img_dir`` whose name without suffix is ``stem``."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (stem + suffix, stem + suffix.upper()):
            path = osp.join(img_dir, candidate)
            if osp.exists(path):
                return path
    raise FileNotFoundError(f'no image named {stem}.* ({", ".join(IMAGE_SUFFIXES)}) in {img_dir}')


def pil_pixel_limit_lifted():
    """PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) lifted
    inside, restored after (once the last of the threads inside leaves:
    :func:`~mmsamrefiner.utils.background.overridden`): the caller applies
    its own limit."""
    return overridden(Image, 'MAX_IMAGE_PIXELS', None)


def header_size(path: str) -> Optional[Tuple[int, int]]:
    """The (H, W) of an image file read from its header (no pixel decoded);
    None when PIL cannot identify or open the file (the decoder then reports
    what is wrong, or its decoded size is checked)."""
    try:
        with pil_pixel_limit_lifted(), Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001
        # Broad on purpose: PIL's format plugins report a damaged header with
        # whatever their parsing step raised (OSError, SyntaxError,
        # struct.error, ValueError, ...); any failure here leaves the file to
        # the decoder, which reports it, or to the check of its decoded size.
        return None
    return height, width


def check_pixels(what: str, height: int, width: int, max_pixels: Optional[int]) -> None:
    """Raise :class:`InputRefused` if ``what`` (``'image 3 (a.jpg)'``) of
    ``height`` x ``width`` has more than ``max_pixels`` pixels (None or 0: no
    limit)."""
    if max_pixels and height * width > max_pixels:
        raise InputRefused(f'{what} is {height}x{width} = {height * width} pixels, over '
                           f'--max-pixels {max_pixels}; raise it (or 0 for no limit) if the '
                           'machine has the memory')


def check_file_pixels(what: str, path: str, max_pixels: Optional[int]) -> None:
    """:func:`check_pixels` of a file by its header; a file whose header PIL
    cannot read passes (check its decoded size)."""
    size = header_size(path) if max_pixels else None
    if size is not None:
        check_pixels(f'{what} {path}', *size, max_pixels)


def outside_folder(relative_path: str) -> bool:
    """Whether a path meant to be relative to a folder leads out of it
    (absolute, or ``..`` first once normalised).  Lexical: a symbolic link
    inside the folder to a file elsewhere is inside."""
    return osp.isabs(relative_path) or osp.normpath(relative_path).split(os.sep)[0] == '..'


def _shown(value) -> str:
    """``value`` as JSON, for messages (shortened)."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + '...'


def _check_polygons(segmentation) -> None:
    for index, polygon in enumerate(segmentation):
        if not isinstance(polygon, list) or not all(
                isinstance(v, Real) and not isinstance(v, bool) for v in polygon):
            raise ValueError(f'polygon {index} is not a list of numbers [x1, y1, x2, y2, ...] '
                             '(COCO polygons are a list of such lists)')
        if len(polygon) % 2:
            raise ValueError(f'polygon {index} has an odd number of coordinates '
                             f'({len(polygon)}); it must be x, y pairs')
        if len(polygon) < 6:
            raise ValueError(f'polygon {index} has {len(polygon) // 2} point(s); a polygon '
                             'needs at least 3 (x, y) points: fix or drop it')


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """An (H, W) bool mask from a COCO segmentation: polygons, uncompressed RLE
    (``counts`` a list) or compressed RLE (``counts`` bytes or str).

    Raises:
        ValueError: a malformed segmentation (a polygon of fewer than 3
            points, an RLE of another size than ``(height, width)``, ...),
            with a message saying what is wrong.
    """
    from pycocotools import mask as mask_utils  # where RLEs are decoded, not at import
    if isinstance(segmentation, list):  # polygons
        _check_polygons(segmentation)
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        return mask_utils.decode(rle).astype(bool)
    if not isinstance(segmentation, dict) or not {'size', 'counts'} <= set(segmentation):
        raise ValueError('segmentation must be polygons (a list of [x1, y1, x2, y2, ...]) or '
                         'an RLE (a dict with "size" and "counts"), got '
                         f'{type(segmentation).__name__}')
    size = segmentation['size']
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        raise ValueError(f'its RLE has size {size} (height, width) but the image is '
                         f'{height}x{width} ("height", "width" in "images"); the mask must '
                         "have the image's size")
    try:
        if isinstance(segmentation['counts'], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation)
            if isinstance(rle['counts'], str):
                rle['counts'] = rle['counts'].encode('ascii')
        mask = mask_utils.decode(rle)
    except Exception as error:  # noqa: BLE001
        # Broad on purpose: pycocotools' C decoder raises TypeError, ValueError
        # or its own errors for malformed counts, naming no field; each
        # becomes the ValueError this function documents.
        raise ValueError(f'its RLE cannot be decoded ({type(error).__name__}: {error})') \
            from error
    if mask.shape != (height, width):
        raise ValueError(f'its RLE decodes to {mask.shape[0]}x{mask.shape[1]} but the image '
                         f'is {height}x{width}')
    return mask.astype(bool)


def read_label_map(path: str, max_pixels: Optional[int] = None):
    """(H, W) int64 label map and its palette ((K, 3) uint8 RGB, or None for grey).

    ``max_pixels``: None: PIL's own decompression-bomb limit applies; else it
    is lifted and a map of more pixels than ``max_pixels`` (0: no limit) is
    refused (:class:`InputRefused`) before it is decoded.
    """
    lifted = contextlib.nullcontext() if max_pixels is None else pil_pixel_limit_lifted()
    with lifted, Image.open(path) as image:
        check_pixels(f'label map {path}', image.height, image.width, max_pixels)
        palette = image.getpalette() if image.mode == 'P' else None
        if image.mode not in ('P', 'L', 'I', 'I;16'):
            raise ValueError(f'{path} is a {image.mode} image; label maps must be palette '
                             "('P') or single-channel PNGs")
        label_map = np.array(image).astype(np.int64)
    if palette is not None:
        palette = np.array(palette, np.uint8).reshape(-1, 3)
    return label_map, palette


def read_binary_mask(path: str) -> np.ndarray:
    """An (H, W) bool mask from a 0/1 or 0/255 PNG (any non-zero pixel is in)."""
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise IOError(f'could not read the mask {path}')
    return mask > 0


def _read_coco_json(ann_file: str) -> dict:
    """The content of a COCO instance json; :class:`CollectionError` with one
    clear sentence for anything else."""
    try:
        with open(ann_file, 'rb') as f:
            coco = json.loads(f.read())
    except json.JSONDecodeError as error:
        raise CollectionError(f'{ann_file} is not valid JSON ({error.msg} at line '
                              f'{error.lineno}, column {error.colno}); --coco takes a COCO '
                              'instance json') from error
    except UnicodeDecodeError as error:
        raise CollectionError(f'{ann_file} is not a text (JSON) file; --coco takes a COCO '
                              'instance json') from error
    expected = ('a COCO instance json is an object with "images" (id, file_name, height, '
                'width) and "annotations" (id, image_id, segmentation)')
    if not isinstance(coco, dict):
        raise CollectionError(f'{ann_file} holds a JSON {type(coco).__name__}, not a COCO '
                              f'instance json: {expected}')
    if 'images' not in coco:
        if 'shapes' in coco and 'imagePath' in coco:
            raise CollectionError(f'{ann_file} is a labelme file (one image\'s "shapes"), not '
                                  f'a COCO instance json: convert it (e.g. labelme2coco); '
                                  f'{expected}')
        found = ', '.join(f'"{k}"' for k in list(coco)[:5]) or 'nothing'
        raise CollectionError(f'{ann_file} has no "images" (it has {found}), so it is not a '
                              f'COCO instance json: {expected}')
    if not isinstance(coco['images'], list) or not isinstance(coco.get('annotations', []), list):
        raise CollectionError(f'"images" and "annotations" of {ann_file} must be lists: '
                              f'{expected}')
    for index, image in enumerate(coco['images']):
        if not isinstance(image, dict) or 'id' not in image or 'file_name' not in image:
            raise CollectionError(f'entry {index} of "images" in {ann_file} has no "id" or '
                                  f'"file_name": {expected}')
        _check_image_entry(image, index, ann_file)
    for index, ann in enumerate(coco.get('annotations', [])):
        if not isinstance(ann, dict) or 'image_id' not in ann:
            raise CollectionError(f'entry {index} of "annotations" in {ann_file} (id '
                                  f'{ann.get("id") if isinstance(ann, dict) else None}) has no '
                                  f'"image_id": {expected}')
        if not _is_id(ann['image_id']):
            raise CollectionError(f'entry {index} of "annotations" in {ann_file} (id '
                                  f'{_shown(ann.get("id"))}) has "image_id" '
                                  f'{_shown(ann["image_id"])}; it must be the id (an integer '
                                  'or a string) of an entry of "images"')
    return coco


def _is_id(value) -> bool:
    """Image ids are ints or strs (they name output files); not bools."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _check_image_entry(image: dict, index: int, ann_file: str) -> None:
    """:class:`CollectionError` if an entry of ``"images"`` has an id that is
    not an int or a str, or a ``file_name`` that is not a non-empty str."""
    if not _is_id(image['id']):
        raise CollectionError(f'entry {index} of "images" in {ann_file} has "id" '
                              f'{_shown(image["id"])}; image ids must be integers or strings')
    file_name = image['file_name']
    if not isinstance(file_name, str) or not file_name:
        raise CollectionError(f'image {_shown(image["id"])} (entry {index} of "images") in '
                              f'{ann_file} has "file_name" {_shown(file_name)}; it must be the '
                              "image's path relative to the image folder, a non-empty string")


class CocoInstances:
    """A COCO-style instance json and its images.

    Args:
        ann_file: the json.
        img_dir: folder the images' ``file_name`` s are relative to.
        allow_outside_img_dir: whether a ``file_name`` may lead outside
            ``img_dir`` (``../``, an absolute path); if not,
            :meth:`check_image_path` refuses it.

    Raises:
        CollectionError: the file is not a COCO instance json (invalid JSON, a
            list, no ``"images"``, a labelme file, ...), two images share an
            id, or an annotation refers to an image that is not listed.
            Annotations that share an id are listed in :attr:`duplicate_ids`
            (see :meth:`check_unique_ids`).
    """

    def __init__(self, ann_file: str, img_dir: str, allow_outside_img_dir: bool = False):
        self.ann_file = ann_file
        self.coco = _read_coco_json(ann_file)
        self.img_dir = img_dir
        self.allow_outside_img_dir = allow_outside_img_dir
        self.anns_of: Dict[object, List[dict]] = {}
        for im in self.coco['images']:
            if im['id'] in self.anns_of:
                raise CollectionError(f'image id {im["id"]} is used by more than one entry of '
                                      f'"images" in {ann_file}; image ids must be unique')
            self.anns_of[im['id']] = []
        #: position of each annotation in "annotations" (by ``id()``), for messages
        self._position: Dict[int, int] = {}
        images_of_id: Dict[object, List[object]] = {}
        for position, ann in enumerate(self.coco.get('annotations', [])):
            if ann['image_id'] not in self.anns_of:
                raise CollectionError(f'annotation {ann.get("id")} of {ann_file} refers to '
                                      f'image {ann["image_id"]}, which is not in "images"')
            self.anns_of[ann['image_id']].append(ann)
            self._position[id(ann)] = position
            if 'id' in ann:
                images_of_id.setdefault(_hashable(ann['id']), []).append(ann['image_id'])
        #: ``{annotation id: [image ids]}`` of the ids used more than once
        self.duplicate_ids = {k: v for k, v in images_of_id.items() if len(v) > 1}

    def check_unique_ids(self) -> None:
        """Raise :class:`CollectionError` if annotations share an id (refined
        masks are stored by annotation id, so they would be swapped)."""
        if not self.duplicate_ids:
            return
        examples = '; '.join(
            f'id {ann_id} in images {", ".join(str(i) for i in image_ids)}'
            for ann_id, image_ids in list(self.duplicate_ids.items())[:3])
        raise CollectionError(
            f'{len(self.duplicate_ids)} annotation id(s) of {self.ann_file} are used more than '
            f'once ({examples}); refined masks are stored by annotation id, so every '
            'annotation needs its own: renumber them (e.g. ann["id"] = position + 1)')

    def items(self) -> List[CoarseItem]:
        return [CoarseItem(key=file_key(im['id']), img_path=osp.join(self.img_dir, im['file_name']),
                           meta=dict(image=im), name=im['id']) for im in self.coco['images']]

    def check_image_path(self, item: CoarseItem) -> None:
        """Raise :class:`InputRefused` if the image's ``file_name`` leads
        outside ``img_dir`` (:func:`outside_folder`) and that is not allowed."""
        image = item.meta['image']
        if not self.allow_outside_img_dir and outside_folder(image['file_name']):
            raise InputRefused(f'image {_shown(image["id"])} has "file_name" '
                               f'{_shown(image["file_name"])}, which leads outside --img-dir '
                               f'{self.img_dir}; pass --allow-outside-img-dir if the '
                               'collection means it')

    def refinable(self, ann: dict) -> bool:
        """Crowd regions and annotations without a segmentation pass through."""
        return not ann.get('iscrowd', 0) and bool(ann.get('segmentation'))

    def input_digest(self, item: CoarseItem) -> str:
        """Digest of the image's record, its annotations and the image file's stamp."""
        image = item.meta['image']
        digest = hasher()
        digest.update(canonical_json([image, self.anns_of[image['id']]]))
        digest.update(file_stamp(item.img_path).encode())
        return digest.hexdigest()

    def load(self, item: CoarseItem, max_pixels: Optional[int] = None):
        """(N, H, W) bool masks of the image's refinable annotations and their ids.

        Raises:
            AnnotationError: an annotation without ``id`` or with a malformed
                segmentation (the message names it and says what is wrong).
            InputRefused: the record's ``height`` x ``width`` is over
                ``max_pixels`` (None or 0: no limit); nothing is allocated.
            ValueError: the image record has no valid ``height``/``width``.
        """
        image = item.meta['image']
        height, width = image.get('height'), image.get('width')
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                   for v in (height, width)):
            raise ValueError(f'image {image["id"]} ({image["file_name"]}) has no valid '
                             f'"height" and "width" in "images" (got {height}, {width})')
        check_pixels(f'image {_shown(image["id"])} ({image["file_name"]}, "height" and "width" '
                     'in "images")', height, width, max_pixels)
        anns = [a for a in self.anns_of[image['id']] if self.refinable(a)]
        masks = np.zeros((len(anns), height, width), bool)
        for index, ann in enumerate(anns):
            if 'id' not in ann:
                raise AnnotationError(
                    None, f'annotation at position {self._position.get(id(ann))} of '
                    f'"annotations" (image {image["id"]}) has no "id"; give every annotation '
                    'a unique id')
            try:
                masks[index] = decode_segmentation(ann['segmentation'], height, width)
            except ValueError as error:
                raise AnnotationError(ann['id'], f'annotation {ann["id"]}: {error}') from error
        return masks, [a['id'] for a in anns]


def _hashable(value):
    try:
        hash(value)
        return value
    except TypeError:
        return json.dumps(value, sort_keys=True)


class LabelMaps:
    """A folder of PNG label maps and the folder of their images (same stems).

    Args:
        label_dir: the label maps (``*.png``).
        img_dir: the images.
    """

    def __init__(self, label_dir: str, img_dir: str):
        self.label_dir, self.img_dir = label_dir, img_dir
        self.paths = sorted(glob.glob(osp.join(glob.escape(label_dir), '*.png')))
        if not self.paths:
            raise FileNotFoundError(f'no PNG label maps in {label_dir}')

    def items(self) -> List[CoarseItem]:
        items = []
        for path in self.paths:
            stem = osp.splitext(osp.basename(path))[0]
            items.append(CoarseItem(key=file_key(stem), img_path=self._image(stem),
                                    meta=dict(label_path=path), name=stem))
        return items

    def _image(self, stem: str) -> Optional[str]:
        try:
            return find_image(self.img_dir, stem)
        except FileNotFoundError:
            return osp.join(self.img_dir, stem)  # reported when the item is refined

    def input_digest(self, item: CoarseItem) -> str:
        """Digest of the label map's content and the image file's stamp."""
        digest = hasher()
        digest.update(_file_content_digest(item.meta['label_path']).encode())
        digest.update(file_stamp(item.img_path).encode())
        return digest.hexdigest()

    def load(self, item: CoarseItem, max_pixels: Optional[int] = None):
        """The (H, W) int64 label map and its palette (or None); see
        :func:`read_label_map` for ``max_pixels``."""
        return read_label_map(item.meta['label_path'], max_pixels)


class BinaryMasks:
    """Per image a folder of binary instance PNGs: ``<mask_dir>/<stem>/*.png``.

    Args:
        mask_dir: the folder of per-image folders.
        img_dir: the images.
    """

    def __init__(self, mask_dir: str, img_dir: str):
        self.mask_dir, self.img_dir = mask_dir, img_dir
        self.stems = sorted(d for d in os.listdir(mask_dir)
                            if osp.isdir(osp.join(mask_dir, d)))
        if not self.stems:
            raise FileNotFoundError(f'no per-image mask folders in {mask_dir}')

    def items(self) -> List[CoarseItem]:
        items = []
        for stem in self.stems:
            try:
                img_path = find_image(self.img_dir, stem)
            except FileNotFoundError:
                img_path = osp.join(self.img_dir, stem)
            names = sorted(osp.basename(p) for p in
                           glob.glob(osp.join(glob.escape(self.mask_dir), glob.escape(stem),
                                              '*.png')))
            items.append(CoarseItem(key=file_key(stem), img_path=img_path,
                                    meta=dict(names=names), name=stem))
        return items

    def input_digest(self, item: CoarseItem) -> str:
        """Digest of the mask files' names and contents and the image file's stamp."""
        digest = hasher()
        for name in item.meta['names']:
            digest.update(f'{name}:'.encode())
            digest.update(_file_content_digest(osp.join(self.mask_dir, item.name,
                                                        name)).encode())
        digest.update(file_stamp(item.img_path).encode())
        return digest.hexdigest()

    def load(self, item: CoarseItem, max_pixels: Optional[int] = None):
        """(N, H, W) bool masks and their file names; a mask of more pixels
        than ``max_pixels`` (by its header; None or 0: no limit) is refused
        (:class:`InputRefused`) before any is decoded."""
        names = item.meta['names']
        paths = [osp.join(self.mask_dir, item.name, n) for n in names]
        for path in paths:
            check_file_pixels('mask', path, max_pixels)
        masks = [read_binary_mask(path) for path in paths]
        if len({m.shape for m in masks}) > 1:
            raise ValueError(f'the masks of {item.name} differ in size: '
                             f'{sorted({m.shape for m in masks})}')
        return (np.stack(masks) if masks else np.zeros((0, 0, 0), bool)), names

