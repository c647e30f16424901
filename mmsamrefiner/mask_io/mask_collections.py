# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A coarse-mask collection and its refined output, one class per format.

Every kind has the same interface, so the code that refines, scores and draws
a collection (:func:`mmsamrefiner.apis.refine_collection`,
:mod:`mmsamrefiner.evaluation.report`,
:mod:`mmsamrefiner.visualization.collection`) and the SAMRefiner++ datasets
(:mod:`mmsamrefiner.datasets.coarse_mask_dataset`, which open collections for
reading only) never ask which format they have:

* :meth:`~MaskCollection.items`, :meth:`~MaskCollection.input_digest`,
  :meth:`~MaskCollection.read`: an image's coarse input (the reader,
  :mod:`.coarse_masks`), as :class:`CoarseInstances` or
  :class:`CoarseLabelMap`;
* :meth:`~MaskCollection.check`, :meth:`~MaskCollection.check_image`: the
  collection as a whole (no two images share an output key) and, before any
  pixel is decoded, an image (not outside the image folder, not over the
  pixel limit);
* :meth:`~MaskCollection.refine`, :meth:`~MaskCollection.passthrough`:
  refined output (or the coarse input unchanged when refinement fails);
* :meth:`~MaskCollection.write`, :meth:`~MaskCollection.discard`,
  :attr:`~MaskCollection.records`, :meth:`~MaskCollection.finish`: atomic
  writes, the per-image completion records
  (:class:`~.records.RecordBook`) and the merged output, through the
  collection's writer (:mod:`.refined_masks`);
* :attr:`~MaskCollection.refined_path`, :meth:`~MaskCollection.eval_file`:
  what ``--eval`` scores and where it writes the scores;
* :meth:`~MaskCollection.overlay_masks`: the masks an overlay draws.

:class:`CocoCollection` (COCO instance json), :class:`LabelMapCollection` (PNG
label maps) and :class:`BinaryMaskCollection` (per-image folders of binary
PNGs).  :attr:`~MaskCollection.format_name`, the reader's class name, is part
of the settings digest of every record.
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np

from mmsamrefiner.utils.file_keys import find_collision

from .coarse_masks import (
    BinaryMasks,
    CoarseItem,
    CocoInstances,
    CollectionError,
    LabelMaps,
    check_file_pixels,
    read_binary_mask,
    read_label_map,
)
from .refined_masks import RefinedBinaryMaskWriter, RefinedCocoWriter, RefinedLabelMapWriter


@dataclass
class CoarseInstances:
    """An image's coarse instances.

    Attributes:
        masks: (N, H, W) bool, the image's frame ((0, 0, 0) or (0, H, W) for
            none).
        ids: what names each mask in the collection: its annotation id
            (COCO) or its file name (binary masks).
    """
    masks: np.ndarray
    ids: list


@dataclass
class CoarseLabelMap:
    """An image's coarse label map: ``label_map`` (H, W) int64 and its
    ``palette`` ((K, 3) uint8 RGB, or None for a grey PNG)."""
    label_map: np.ndarray
    palette: Optional[np.ndarray]


@dataclass
class RefinedInstances:
    """An image's refined instances: ``masks`` (N, H, W) bool, ``empty`` (N,)
    bool (the refined mask is empty) and the (N,) float32 signals
    ``scores``, ``stability``, ``coarse_iou`` (0 for masks passed through
    unrefined; see :class:`mmsamrefiner.refiner.RefineResult`); ndarrays,
    or tensors on the refiner's device until :meth:`MaskCollection.to_host`."""
    masks: np.ndarray
    scores: np.ndarray
    empty: np.ndarray
    stability: np.ndarray
    coarse_iou: np.ndarray


@dataclass
class RefinedLabelMap:
    """An image's refined label map: ``label_map`` (H, W) and the signals of
    its refined classes, ``classes`` (a table column -> array,
    :func:`mmsamrefiner.refiner.signals.class_signals`; None for a map
    passed through unrefined)."""
    label_map: np.ndarray
    classes: Optional[Dict[str, np.ndarray]] = None


class MaskCollection:
    """A coarse-mask collection (``source``, a reader of :mod:`.coarse_masks`)
    and the writer of its refined output (``writer``, of
    :mod:`.refined_masks`; None for a collection that is only read, as the
    SAMRefiner++ datasets do)."""

    #: what an image's coarse input is checked against the image as
    what = 'masks'

    def __init__(self, source, writer):
        self.source = source
        self.writer = writer

    # -- reading -----------------------------------------------------------------
    @property
    def format_name(self) -> str:
        """The format's name in the settings digest (the reader's class name)."""
        return type(self.source).__name__

    def _output(self):
        if self.writer is None:
            raise ValueError(f'this {type(self).__name__} is opened for reading only (no output)')
        return self.writer

    @property
    def root(self) -> str:
        """The folder the output's files, records and lock live in."""
        return self._output().root

    @property
    def records(self):
        """The per-image completion records (a ``RecordBook``)."""
        return self._output().records

    def items(self) -> List[CoarseItem]:
        return self.source.items()

    def input_digest(self, item: CoarseItem) -> str:
        return self.source.input_digest(item)

    @property
    def input_path(self) -> str:
        """The coarse input's json or folder (for messages)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise ``CollectionError`` if the collection as a whole cannot be
        refined: two images whose keys (output names) coincide."""
        collision = find_collision((item.key, item.name) for item in self.items())
        if collision is not None:
            key, first, second = collision
            raise CollectionError(
                f'images {json.dumps(first)} and {json.dumps(second)} of {self.input_path} '
                f'would both write their outputs as {key!r}, so one would overwrite the '
                'other; give them names that differ as text')

    def format_options(self, semantic_options: dict) -> Optional[dict]:
        """The options the refined output depends on, besides the refiner."""
        return None

    def read_limits(self, max_pixels: Optional[int]) -> dict:
        """The limits an image may be refused under (:meth:`check_image`,
        :meth:`read`): a record of an image refused under other limits is
        not reused."""
        return dict(max_pixels=max_pixels or 0)

    def check_image(self, item: CoarseItem, max_pixels: Optional[int] = None) -> None:
        """Raise :class:`~.coarse_masks.InputRefused`, before any pixel is
        decoded, if the image must not be read: its header says it has more
        than ``max_pixels`` pixels (None or 0: no limit)."""
        check_file_pixels('image', item.img_path, max_pixels)

    def read(self, item: CoarseItem, max_pixels: Optional[int] = None):
        """The image's coarse input (what :meth:`refine` takes); an input of
        more than ``max_pixels`` pixels is refused before it is decoded."""
        raise NotImplementedError

    def size(self, coarse):
        """The (H, W) the image must have for ``coarse`` (None: no check)."""
        raise NotImplementedError

    def num_masks(self, coarse) -> int:
        raise NotImplementedError

    # -- refining and writing ----------------------------------------------------
    def passthrough(self, coarse):
        """The output of an image whose refinement failed: its coarse input."""
        raise NotImplementedError

    def refine(self, refiner, image, coarse, embedding, semantic_options: dict):
        """The refined output of one image."""
        raise NotImplementedError

    def to_host(self, output):
        """``output`` of :meth:`refine` or :meth:`passthrough` as host
        (numpy) arrays, as :meth:`write` and :meth:`num_empty` take it."""
        return output

    def num_empty(self, output) -> int:
        return 0

    def write(self, key: str, coarse, output) -> Dict[str, str]:
        """Write one image's output atomically; ``{relative path: digest}``."""
        raise NotImplementedError

    def discard(self, key: str) -> Dict[str, str]:
        """Remove the output of an image whose coarse input cannot be read
        (a COCO image without a part keeps its annotations in the merged
        json); ``{}``."""
        return self._output().discard(key)

    def finish(self, keys: Iterable[str]) -> None:
        """After all ranks are done: write what gathers the images (the
        writer's ``merge``; nothing for formats without one file)."""
        self._output().merge(keys)

    # -- scoring and drawing -----------------------------------------------------
    @property
    def refined_path(self) -> str:
        """The refined output as its reader takes it: the output folder (the
        merged json for COCO)."""
        return self._output().root

    def eval_file(self) -> str:
        """Where ``tools/refine.py --eval`` writes its scores."""
        return osp.join(self._output().root, 'eval.json')

    def prepare_overlays(self) -> None:
        """Open what :meth:`overlay_masks` reads for every image."""

    def overlay_masks(self, item: CoarseItem, which: str, ignore_index: int = 255,
                      background: int = 0) -> np.ndarray:
        """(N, H, W) bool ``'coarse'`` or ``'refined'`` masks of ``item`` to draw."""
        raise NotImplementedError


def _signal(result, name: str):
    """A signal of a refiner's result (as it is: an ndarray or a tensor);
    float32 zeros for a refiner (any object with a ``refine`` method) whose
    results do not have it."""
    value = getattr(result, name, None)
    return np.zeros(len(result.masks), np.float32) if value is None else value


def _to_numpy(array):
    """A tensor (on any device) as an ndarray; an ndarray as it is."""
    return array if isinstance(array, np.ndarray) else array.cpu().numpy()


class _InstanceCollection(MaskCollection):
    """Instances: ``read`` gives :class:`CoarseInstances`, ``refine``
    :class:`RefinedInstances`."""

    def read(self, item: CoarseItem, max_pixels: Optional[int] = None) -> CoarseInstances:
        masks, ids = self.source.load(item, max_pixels=max_pixels)
        return CoarseInstances(masks=masks, ids=ids)

    def size(self, coarse: CoarseInstances):
        return coarse.masks.shape[-2:] if len(coarse.masks) else None

    def num_masks(self, coarse: CoarseInstances) -> int:
        return int(len(coarse.masks))

    def passthrough(self, coarse: CoarseInstances) -> RefinedInstances:
        zeros = np.zeros(len(coarse.masks), np.float32)
        return RefinedInstances(masks=coarse.masks, scores=zeros, empty=zeros.astype(bool),
                                stability=zeros, coarse_iou=zeros)

    def refine(self, refiner, image, coarse: CoarseInstances, embedding,
               semantic_options: dict) -> RefinedInstances:
        """The refined instances, left on the refiner's ``device`` (tensors)
        when it has one: :meth:`to_host` copies them to the host, where they
        are written."""
        if not len(coarse.masks):
            return self.passthrough(coarse)
        masks, device = coarse.masks, getattr(refiner, 'device', None)
        if device is not None:
            import torch
            masks = torch.from_numpy(np.ascontiguousarray(masks)).to(device)
        result = refiner.refine(image, masks, image_embedding=embedding)
        return RefinedInstances(masks=result.masks, scores=result.scores, empty=result.empty,
                                stability=_signal(result, 'stability'),
                                coarse_iou=_signal(result, 'coarse_iou'))

    def to_host(self, output: RefinedInstances) -> RefinedInstances:
        return RefinedInstances(masks=_to_numpy(output.masks), scores=_to_numpy(output.scores),
                                empty=_to_numpy(output.empty),
                                stability=_to_numpy(output.stability),
                                coarse_iou=_to_numpy(output.coarse_iou))

    def num_empty(self, output: RefinedInstances) -> int:
        return int(np.sum(output.empty))

    def write(self, key: str, coarse: CoarseInstances,
              output: RefinedInstances) -> Dict[str, str]:
        """The refined masks under the coarse masks' ids, with their signals."""
        return self.writer.write(key, coarse.ids, output.masks, output.scores,
                                 output.stability, output.coarse_iou)


class CocoCollection(_InstanceCollection):
    """A COCO instance json (:class:`CocoInstances`) refined into the same json
    (:class:`RefinedCocoWriter`)."""

    def __init__(self, source: CocoInstances, writer: Optional[RefinedCocoWriter]):
        super().__init__(source, writer)
        self._refined: Optional[CocoInstances] = None

    @classmethod
    def open(cls, ann_file: str, img_dir: str, out_file: Optional[str] = None,
             allow_outside_img_dir: bool = False) -> 'CocoCollection':
        """``out_file``: the refined json (None: read only);
        ``allow_outside_img_dir``: whether a ``file_name`` may lead outside
        ``img_dir`` (else :meth:`check_image` refuses that image)."""
        source = CocoInstances(ann_file, img_dir, allow_outside_img_dir)
        return cls(source, None if out_file is None else RefinedCocoWriter(out_file, source.coco))

    @property
    def input_path(self) -> str:
        return self.source.ann_file

    def check(self) -> None:
        super().check()
        self.source.check_unique_ids()

    def read_limits(self, max_pixels: Optional[int]) -> dict:
        return dict(super().read_limits(max_pixels),
                    allow_outside_img_dir=self.source.allow_outside_img_dir)

    def check_image(self, item: CoarseItem, max_pixels: Optional[int] = None) -> None:
        """Also refuses a ``file_name`` leading outside the image folder
        (:meth:`CocoInstances.check_image_path`)."""
        self.source.check_image_path(item)
        super().check_image(item, max_pixels)

    def annotations(self, item: CoarseItem) -> List[dict]:
        """The image's annotations that can be refined (not crowd, with a
        segmentation), in file order."""
        return [a for a in self.source.anns_of[item.meta['image']['id']]
                if self.source.refinable(a)]

    @property
    def refined_path(self) -> str:
        return self._output().out_file

    def eval_file(self) -> str:
        return self._output().out_file + '.eval.json'

    def prepare_overlays(self) -> None:
        self._refined = CocoInstances(self._output().out_file, self.source.img_dir)

    def overlay_masks(self, item: CoarseItem, which: str, ignore_index: int = 255,
                      background: int = 0) -> np.ndarray:
        if which == 'coarse':
            return self.read(item).masks
        if self._refined is None:
            self.prepare_overlays()
        masks, _ = self._refined.load(item)
        return masks


class BinaryMaskCollection(_InstanceCollection):
    """Per-image folders of binary PNGs (:class:`BinaryMasks`) refined into the
    same layout (:class:`RefinedBinaryMaskWriter`)."""

    @classmethod
    def open(cls, mask_dir: str, img_dir: str,
             out_dir: Optional[str] = None) -> 'BinaryMaskCollection':
        """``out_dir``: the refined masks (None: read only)."""
        return cls(BinaryMasks(mask_dir, img_dir),
                   None if out_dir is None else RefinedBinaryMaskWriter(out_dir))

    @property
    def input_path(self) -> str:
        return self.source.mask_dir

    def overlay_masks(self, item: CoarseItem, which: str, ignore_index: int = 255,
                      background: int = 0) -> np.ndarray:
        if which == 'coarse':
            return self.read(item).masks
        names = item.meta['names']
        if not names:
            return np.zeros((0, 0, 0), bool)
        folder = osp.join(self.writer.root, self.writer.relpath(item.key))
        masks = [read_binary_mask(osp.join(folder, n)) for n in names]
        if len({m.shape for m in masks}) > 1:
            raise ValueError(f'the masks differ in size: {sorted({m.shape for m in masks})}')
        return np.stack(masks)


def _class_masks(label_map: np.ndarray, ignore_index: int, background: int) -> np.ndarray:
    classes = [c for c in np.unique(label_map) if c not in (ignore_index, background)]
    if not classes:
        return np.zeros((0, ) + label_map.shape, bool)
    return np.stack([label_map == c for c in classes])


class LabelMapCollection(MaskCollection):
    """PNG label maps (:class:`LabelMaps`) refined into PNG label maps, palette
    kept (:class:`RefinedLabelMapWriter`); ``read`` gives a
    :class:`CoarseLabelMap`, ``refine`` a :class:`RefinedLabelMap`."""

    what = 'label_map'

    @classmethod
    def open(cls, label_dir: str, img_dir: str,
             out_dir: Optional[str] = None) -> 'LabelMapCollection':
        """``out_dir``: the refined label maps (None: read only)."""
        return cls(LabelMaps(label_dir, img_dir),
                   None if out_dir is None else RefinedLabelMapWriter(out_dir))

    @property
    def input_path(self) -> str:
        return self.source.label_dir

    def format_options(self, semantic_options: dict) -> Optional[dict]:
        return semantic_options

    def read(self, item: CoarseItem, max_pixels: Optional[int] = None) -> CoarseLabelMap:
        label_map, palette = self.source.load(item, max_pixels=max_pixels)
        return CoarseLabelMap(label_map=label_map, palette=palette)

    def size(self, coarse: CoarseLabelMap):
        return coarse.label_map.shape

    def num_masks(self, coarse: CoarseLabelMap) -> int:
        return 1

    def passthrough(self, coarse: CoarseLabelMap) -> RefinedLabelMap:
        return RefinedLabelMap(coarse.label_map)

    def refine(self, refiner, image, coarse: CoarseLabelMap, embedding,
               semantic_options: dict) -> RefinedLabelMap:
        """Through ``refiner.refine_label_map`` (with the class signals);
        a refiner without it through ``refine_semantic``."""
        if hasattr(refiner, 'refine_label_map'):
            result = refiner.refine_label_map(image, coarse.label_map,
                                              image_embedding=embedding, **semantic_options)
            return RefinedLabelMap(result.label_map, result.classes)
        return RefinedLabelMap(refiner.refine_semantic(
            image, coarse.label_map, image_embedding=embedding, **semantic_options))

    def write(self, key: str, coarse: CoarseLabelMap,
              output: RefinedLabelMap) -> Dict[str, str]:
        return self.writer.write(key, output.label_map, coarse.palette, output.classes)

    def overlay_masks(self, item: CoarseItem, which: str, ignore_index: int = 255,
                      background: int = 0) -> np.ndarray:
        if which == 'coarse':
            label_map = self.read(item).label_map
        else:
            label_map, _ = read_label_map(osp.join(self.writer.root,
                                                   self.writer.relpath(item.key)))
        return _class_masks(label_map, ignore_index, background)


#: the collection class of each reader (for callers that hold a reader and a writer)
COLLECTION_OF = {CocoInstances: CocoCollection, LabelMaps: LabelMapCollection,
                 BinaryMasks: BinaryMaskCollection}


def as_collection(source, writer=None) -> MaskCollection:
    """``source`` if it is a :class:`MaskCollection`, else the collection of
    the reader ``source`` and the refined-mask ``writer``."""
    if isinstance(source, MaskCollection):
        return source
    kind = COLLECTION_OF.get(type(source))
    if kind is None:
        raise TypeError(f'unknown source {type(source).__name__}')
    return kind(source, writer)
