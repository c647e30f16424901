# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Bottom-layer helpers: atomic file writes, content digests, file-system-safe
keys for ids someone else wrote, the content-keyed array cache, mask matching.

They need the standard library and numpy; torch is imported only inside
:func:`~.masks.as_bool_tensor`, when it is called.  Every other folder of the
package may import them; they import nothing else of the package.
"""
from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_npz
from .file_keys import file_key, find_collision
from .mask_cache import MaskCache, content_key
from .masks import match_masks

__all__ = [
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_npz', 'MaskCache', 'content_key',
    'file_key', 'find_collision', 'match_masks'
]
