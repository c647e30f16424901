# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Readers and writers: atomic writes, pseudo-label files, the refined-mask cache."""
from .atomic import (atomic_write_bytes, atomic_write_json, atomic_write_npz,
                     atomic_write_png)
from .mask_cache import MaskCache, content_key
from .pseudo_labels import (CocoInstanceWriter, LabelMapWriter, decode_rle,
                            encode_rle)

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_npz', 'atomic_write_png',
    'MaskCache', 'content_key', 'CocoInstanceWriter', 'LabelMapWriter', 'encode_rle',
    'decode_rle'
]
