# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A disk cache of refined masks, keyed by content.

The key is a SHA-1 of everything the refined masks depend on: the image pixels,
the coarse masks (or label map) and a settings string (the refiner's settings
and the SAM checkpoint).  Entries are ``.npz`` files under
``<cache_dir>/<key[:2]>/<key>.npz``, written atomically, so any number of
DataLoader workers or ranks may fill the cache at once.
"""
import hashlib
import os.path as osp
import zipfile
from typing import Dict, Optional

import numpy as np

from .atomic import atomic_write_npz


def content_key(settings: str, *arrays: np.ndarray) -> str:
    """SHA-1 hex digest of ``settings`` and each array's dtype, shape and bytes."""
    digest = hashlib.sha1(settings.encode('utf-8'))
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f'{array.dtype.str}{array.shape}'.encode('ascii'))
        digest.update(array.data)
    return digest.hexdigest()


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
            with np.load(path) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            return None  # a damaged entry is a miss; the next put replaces it

    def put(self, key: str, **arrays: np.ndarray) -> None:
        atomic_write_npz(self.path(key), **arrays)
