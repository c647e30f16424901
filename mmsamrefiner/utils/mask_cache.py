# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A disk cache of arrays keyed by content (refined masks, image embeddings).

The key (:func:`content_key`, a :mod:`mmsamrefiner.utils.digest` digest) binds
everything the refined masks depend on: the image pixels, the coarse masks (or
label map) and a settings string (for
:class:`RefineCoarseMasks`, :meth:`SAMRefiner.fingerprint`: the refiner's
settings and the content of SAM's weights).  Entries are ``.npz`` files under
``<cache_dir>/<key[:2]>/<key>.npz``, written atomically, so any number of
DataLoader workers or ranks may fill the cache at once.

Entries are stored compactly: a bool array (masks) is bit-packed
(``np.packbits``, 8 pixels a byte) and deflated; integer arrays (label maps)
are deflated; float arrays (embeddings, which deflate barely shrinks) are
stored as they are.  :meth:`MaskCache.get` gives back exactly the arrays
given to :meth:`MaskCache.put` (same dtype, shape and values).  Each entry
records its layout (:data:`FORMAT_VERSION`); a file without it, or with
another, is a miss, like a damaged one.
"""
import io
import os.path as osp
import zipfile
from typing import Dict, Optional

import numpy as np

from mmsamrefiner.utils.digest import digest_arrays

from .atomic import atomic_write_bytes

#: Version of the entry layout, stored in each entry under ``_FORMAT``.
FORMAT_VERSION = 2
_FORMAT = '__mask_cache_format__'
_BOOL_SHAPE = '__bool_shape__'  # + name: the shape of a bit-packed bool array


def content_key(settings: str, *arrays: np.ndarray) -> str:
    """The entry name of ``settings`` and the arrays (each one's dtype, shape
    and values): :func:`~mmsamrefiner.utils.digest.digest_arrays`."""
    return digest_arrays(*arrays, prefix=settings)


def encode_entry(**arrays: np.ndarray) -> bytes:
    """The bytes of an entry (an ``.npz`` archive) holding ``arrays``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:

        def add(name: str, array: np.ndarray, deflate: bool) -> None:
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(name + '.npy', member.getvalue(),
                             zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)

        add(_FORMAT, np.array(FORMAT_VERSION), False)
        for name, array in arrays.items():
            if name.startswith('__'):
                raise ValueError(f'array names starting with "__" are reserved, got {name!r}')
            array = np.asanyarray(array)
            if array.dtype == bool:
                add(name, np.packbits(array.reshape(-1)), True)
                add(_BOOL_SHAPE + name, np.array(array.shape, np.int64), False)
            else:
                add(name, array, array.dtype.kind in 'iub')
    return buffer.getvalue()


def decode_entry(data: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The arrays of a loaded entry; ValueError if it is not an entry of
    :data:`FORMAT_VERSION` or is inconsistent."""
    if _FORMAT not in data:
        raise ValueError('not a mask cache entry (no format version)')
    version = int(data[_FORMAT])
    if version != FORMAT_VERSION:
        raise ValueError(f'unknown mask cache entry format {version}')
    arrays = {}
    for name, array in data.items():
        if name.startswith('__'):
            continue
        shape_name = _BOOL_SHAPE + name
        if shape_name in data:
            shape = tuple(int(v) for v in data[shape_name])
            count = int(np.prod(shape, dtype=np.int64))
            if array.dtype != np.uint8 or array.size != (count + 7) // 8:
                raise ValueError(f'bit-packed {name!r} does not hold {shape}')
            array = np.unpackbits(array, count=count).astype(bool).reshape(shape)
        arrays[name] = array
    return arrays


class MaskCache:
    """Refined results on disk, keyed by :func:`content_key`.

    Args:
        cache_dir (str): Root directory of the cache.
    """

    def __init__(self, cache_dir: str):
        self.cache_dir = cache_dir

    def path(self, key: str) -> str:
        return osp.join(self.cache_dir, key[:2], key + '.npz')

    def get(self, key: str) -> Optional[Dict[str, np.ndarray]]:
        """The arrays stored under ``key``, or None if absent or unreadable."""
        path = self.path(key)
        if not osp.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return decode_entry({name: data[name] for name in data.files})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # a damaged entry is a miss; the next put replaces it

    def put(self, key: str, **arrays: np.ndarray) -> None:
        """Store ``arrays`` under ``key`` (compactly, see the module docstring)."""
        atomic_write_bytes(self.path(key), encode_entry(**arrays))
