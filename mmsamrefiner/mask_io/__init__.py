# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Readers and writers: coarse-mask collections, pseudo-label files, refined outputs.

The atomic writers and the content-keyed array cache live in
:mod:`mmsamrefiner.utils` (the refiner core uses them too); their names are
also exported here.
"""
from mmsamrefiner.utils.atomic import (atomic_write_bytes, atomic_write_json,
                                       atomic_write_npz)
from mmsamrefiner.utils.mask_cache import MaskCache, content_key
from .png import atomic_write_png, encode_png
from .pseudo_labels import (CocoInstanceWriter, LabelMapWriter,
                            decode_rle, encode_rle)

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_npz', 'atomic_write_png', 'encode_png',
    'MaskCache', 'content_key', 'CocoInstanceWriter', 'LabelMapWriter', 'encode_rle',
    'decode_rle'
]
