# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Atomic file writes: a reader sees the old file, or the whole new one.

Each write goes to a uniquely named temporary file in the target's directory
(same file system) and is moved over the target with :func:`os.replace`, so a
crash never leaves a half-written file and several processes (DataLoader
workers, ranks) may write the same path at once: the last complete write wins.

A bottom-layer utility (standard library and numpy only), so the refiner core
(the IoU adapter's file) and the I/O layer (refined masks, caches) both use it.
PNG bytes come from :func:`mmsamrefiner.mask_io.png.encode_png`.
"""
import io
import json
import os
import os.path as osp
import tempfile
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent directories."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + osp.basename(path) + '.',
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_bytes(path, json.dumps(obj).encode('utf-8'))


def atomic_write_npz(path: str, **arrays: np.ndarray) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to ``path`` atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
