# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Bottom-layer helpers, standard library and numpy only: atomic file writes,
content digests, the content-keyed array cache, mask matching.

Every other folder of the package may import them; they import nothing else
of the package.
"""
from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_npz
from .mask_cache import MaskCache, content_key
from .masks import match_masks

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_npz', 'MaskCache', 'content_key',
    'match_masks'
]
