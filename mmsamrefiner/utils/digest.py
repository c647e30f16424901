# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Content digests: the one hash function behind every reuse key.

Whatever decides whether something stored may be reused (the refined-mask
cache's entry names, the image-embedding cache's keys and its encoder key,
the per-image records of ``tools/refine.py`` and of the hook's export,
:meth:`SAMRefiner.fingerprint`) is hashed here, with one function: BLAKE2b
with a 16-byte digest, written as 32 hex digits (:func:`hasher`).  Two hashes
elsewhere decide no reuse: checkpoints are verified against the SHA-256 their
publishers give (:mod:`mmsamrefiner.refiner.checkpoints`), and
:func:`~mmsamrefiner.utils.file_keys.file_key` tags an unsafe id with 8 hex
digits of SHA-256 to keep file names apart.  What each helper binds:

* :func:`digest_bytes`: the bytes.
* :func:`digest_file`: a file's content (read in blocks; raises ``OSError``
  when it cannot be read, the caller says what that means for its key).
* :func:`file_stamp`: a file's name (or absolute path), size and modification
  time in ns, without reading it.  Cheap, and not a digest of the content: a
  rewrite with the same size within the file system's time resolution is not
  seen.
* :func:`update_array` / :func:`digest_arrays`: each array's dtype, shape and
  values (C order), so ``uint8`` and ``int64`` arrays of the same values, or
  the same bytes in another shape, differ; a ``prefix`` (settings) may lead.
* :func:`canonical_json` / :func:`digest_json`: a JSON-able value as sorted
  JSON (``default=str`` for anything else), so dict order does not matter.
* :func:`update_tensors` / :func:`digest_tensors`: named tensors' names,
  shapes, dtypes and values, large ones sampled (evenly spaced, about
  ``max_values`` each): a cheap digest of a model's weights that any
  retraining changes.

``update_*`` feed an open :func:`hasher` (to bind several parts in order);
``digest_*`` return the hex digest of one thing.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Iterable, Optional, Tuple, Union

import numpy as np

#: Bytes of every digest (32 hex digits).
DIGEST_SIZE = 16


def hasher(data: Union[bytes, str] = b''):
    """A new BLAKE2b-128 hash object, fed ``data`` (a str as UTF-8)."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE)


def digest_bytes(data: Union[bytes, str]) -> str:
    """Hex digest of ``data`` (a str as UTF-8)."""
    return hasher(data).hexdigest()


def digest_file(path: str) -> str:
    """Hex digest of a file's content; ``OSError`` when it cannot be read."""
    digest = hasher()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: Optional[str], whole_path: bool = False) -> str:
    """``name:size:mtime_ns`` of a file (``name``: its base name, or with
    ``whole_path`` its absolute path), or ``name:missing`` when it cannot be
    stat'ed.  No content is read."""
    name = osp.abspath(path) if whole_path and path else osp.basename(path or '')
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return f'{name}:missing'
    return f'{name}:{stat.st_size}:{stat.st_mtime_ns}'


def update_array(digest, array: np.ndarray, name: str = '') -> None:
    """Feed ``digest`` with ``name``, the array's dtype and shape, then its
    values (C order)."""
    array = np.ascontiguousarray(array)
    digest.update(f'{name}{array.dtype.str}{array.shape}'.encode('ascii'))
    digest.update(array.data)


def digest_arrays(*arrays: np.ndarray, prefix: str = '') -> str:
    """Hex digest of ``prefix`` (settings, UTF-8) and each array as
    :func:`update_array` binds it, in order."""
    digest = hasher(prefix)
    for array in arrays:
        update_array(digest, array)
    return digest.hexdigest()


def canonical_json(value: Any) -> bytes:
    """``value`` as JSON with sorted keys (``str()`` of anything JSON cannot
    hold), UTF-8."""
    return json.dumps(value, sort_keys=True, default=str).encode('utf-8')


def digest_json(value: Any) -> str:
    """Hex digest of :func:`canonical_json` of ``value``."""
    return digest_bytes(canonical_json(value))


def update_tensors(digest, named_tensors: Iterable[Tuple[str, Any]],
                   max_values: int = 1_000_000) -> None:
    """Feed ``digest`` with each ``(name, tensor)``'s name, shape and dtype and
    its values as float32, every ``numel // max_values``-th value of a large
    tensor (a ViT-H's weights in well under a second).  ``tensor``: a torch
    tensor (no torch import here: only its methods are used)."""
    for name, tensor in named_tensors:
        flat = tensor.detach().reshape(-1)
        stride = max(1, flat.numel() // max_values)
        digest.update(f'{name}{tuple(tensor.shape)}{tensor.dtype}'.encode())
        digest.update(flat[::stride].float().cpu().numpy().tobytes())


def digest_tensors(named_tensors: Iterable[Tuple[str, Any]], max_values: int = 1_000_000) -> str:
    """Hex digest of named tensors as :func:`update_tensors` binds them (e.g.
    ``module.state_dict().items()``)."""
    digest = hasher()
    update_tensors(digest, named_tensors, max_values)
    return digest.hexdigest()
