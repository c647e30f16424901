# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Readers and writers: coarse-mask collections, the refined-mask writers (one
family, one resume scheme).

The atomic writers and the content-keyed array cache live in
:mod:`mmsamrefiner.utils` (the refiner core uses them too); their names are
also exported here.
"""
from mmsamrefiner.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_npz
from mmsamrefiner.utils.mask_cache import MaskCache, content_key

from .png import encode_png
from .refined_masks import (
                                       PseudoLabelCocoWriter,
                                       PseudoLabelMapWriter,
                                       RecordBook,
                                       RefinedBinaryMaskWriter,
                                       RefinedCocoWriter,
                                       RefinedLabelMapWriter,
)
from .rle import decode_rle, encode_rle

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_npz', 'encode_png',
    'MaskCache', 'content_key', 'PseudoLabelCocoWriter', 'PseudoLabelMapWriter',
    'RecordBook', 'RefinedCocoWriter', 'RefinedLabelMapWriter', 'RefinedBinaryMaskWriter',
    'encode_rle', 'decode_rle'
]
