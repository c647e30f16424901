# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Reading and writing mask files.

* :mod:`.coarse_masks`: the coarse-mask collections users have (COCO, label
  maps, binary PNGs), read per image;
* :mod:`.mask_collections`: a collection and its refined output, one class per
  format (what ``tools/refine.py`` refines and the SAMRefiner++ datasets read);
* :mod:`.refined_masks`: the writers of refined masks and pseudo-labels, one
  protocol;
* :mod:`.records`: per-image records (resume), the output lock, the error of
  an output that cannot be written;
* :mod:`.rle`, :mod:`.png`: RLE and PNG coding; :mod:`.left_out`: images a
  pass over a refined collection leaves out.

The atomic writers and the content-keyed array cache live in
:mod:`mmsamrefiner.utils` (the refiner core uses them too); their names are
also exported here.
"""
from mmsamrefiner.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_npz
from mmsamrefiner.utils.mask_cache import MaskCache, content_key

from .mask_collections import (
    BinaryMaskCollection,
    CoarseInstances,
    CoarseLabelMap,
    CocoCollection,
    LabelMapCollection,
    MaskCollection,
    RefinedInstances,
    RefinedLabelMap,
    as_collection,
)
from .png import encode_png
from .records import OutputBusyError, OutputLock, OutputWriteError, RecordBook
from .refined_masks import (
    PseudoLabelCocoWriter,
    PseudoLabelMapWriter,
    RefinedBinaryMaskWriter,
    RefinedCocoWriter,
    RefinedLabelMapWriter,
)
from .rle import decode_rle, encode_rle

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_npz', 'encode_png',
    'MaskCache', 'content_key', 'PseudoLabelCocoWriter', 'PseudoLabelMapWriter',
    'RecordBook', 'OutputLock', 'OutputBusyError', 'OutputWriteError', 'RefinedCocoWriter',
    'RefinedLabelMapWriter', 'RefinedBinaryMaskWriter', 'encode_rle', 'decode_rle',
    'MaskCollection', 'CocoCollection', 'LabelMapCollection', 'BinaryMaskCollection',
    'CoarseInstances', 'CoarseLabelMap', 'RefinedInstances', 'RefinedLabelMap',
    'as_collection'
]
