# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Let mmdet's / mmseg's ``tools/test.py`` (and ``--resume``) read the
checkpoints their own ``tools/train.py`` writes, under torch >= 2.6, without
letting any checkpoint run code.

torch 2.6 made ``torch.load`` weights-only by default; mmengine 0.10 loads
checkpoints with a plain ``torch.load``, and its checkpoints also hold the
runner's message hub (log history buffers, numpy scalars and arrays), so
loading one's own training checkpoint fails with "Weights only load failed
... Unsupported global: mmengine.logging.history_buffer.HistoryBuffer".

:func:`install` replaces the loader mmengine's ``CheckpointLoader`` uses for
local files (every ``Runner.load_checkpoint``/``resume`` of a path) with
:func:`load_runner_checkpoint`: a weights-only ``torch.load`` that, for that
load only (``torch.serialization.safe_globals``), also accepts the exact types
:func:`runner_checkpoint_globals` lists: ``HistoryBuffer`` and its
statistics methods, numpy arrays, dtypes and scalars; nothing else callable
(``getattr`` is replaced by a function that returns only those methods).  Nothing
is added to torch's process-wide allow-list, so every other ``torch.load``
(a SAM checkpoint, an IoU adapter, anyone's) stays as strict as torch made it.

``import mmsamrefiner`` calls :func:`install` when mmengine's runner is
already imported (as in mmdet's and mmseg's ``tools/test.py`` and
``tools/train.py``, before their configs' ``custom_imports`` run), and so
do the package's hook, transform and ``tools/adapt.py``; it is idempotent.
Under torch < 2.5 (no scoped allow-list) nothing is changed.
"""
import sys
from contextlib import contextmanager
from typing import List

#: numpy's reconstruction helpers under the names numpy 1 and numpy 2 pickle them
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')
#: the statistics methods every HistoryBuffer registers
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner, name: str):
    """What runner checkpoints pickle as ``getattr(HistoryBuffer, name)``: a
    ``HistoryBuffer`` carries its statistics methods (``min``, ``max``,
    ``current``, ``mean`` and those registered with
    ``HistoryBuffer.register_statistics``), which pickle by that call.  This
    stands in for ``getattr`` in :func:`runner_checkpoint_globals`: it returns
    those methods and refuses everything else, so ``getattr`` itself (a way
    to any object, ``exec`` included) is never reachable from a checkpoint."""
    from mmengine.logging.history_buffer import HistoryBuffer

    # the defaults are registered by the first HistoryBuffer made, maybe none yet
    statistics = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and isinstance(name, str) and name in statistics:
        return getattr(HistoryBuffer, name)
    import pickle
    raise pickle.UnpicklingError(
        f'refused getattr({getattr(owner, "__name__", type(owner).__name__)}, {name!r}) in a '
        'checkpoint: runner checkpoints only name the statistics methods of HistoryBuffer')


def runner_checkpoint_globals() -> List[object]:
    """What mmengine's runner checkpoints hold besides tensors and plain
    containers: ``HistoryBuffer`` (the message hub's logs) and its statistics
    methods (through :func:`history_buffer_statistic`, under the name
    ``builtins.getattr``), numpy ``ndarray``, ``dtype`` and its per-type
    classes, and the two functions numpy's pickles call to rebuild arrays and
    scalars (``_reconstruct``, ``scalar``), under numpy 1's and numpy 2's
    module names."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = getattr(np, '_core', None)
    multiarray = multiarray.multiarray if multiarray is not None else np.core.multiarray
    allowed: List[object] = [HistoryBuffer, np.ndarray, np.dtype,
                             (history_buffer_statistic, 'builtins.getattr')]
    allowed += [type(np.dtype(code)) for code in np.typecodes['All'] if code not in 'OM']
    for module in _NUMPY_MODULES:
        allowed += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    return allowed


@contextmanager
def allow_runner_checkpoint_types():
    """Within the block, weights-only ``torch.load`` also accepts
    :func:`runner_checkpoint_globals` (torch >= 2.5)."""
    import torch
    with torch.serialization.safe_globals(runner_checkpoint_globals()):
        yield


def load_runner_checkpoint(filename: str, map_location=None):
    """mmengine's local checkpoint loader, weights-only, with the runner's
    own types allowed for this load (see the module docstring)."""
    import torch
    with allow_runner_checkpoint_types():
        return torch.load(filename, map_location=map_location, weights_only=True)


def _scoped_allowlist_available() -> bool:
    import torch
    return hasattr(torch.serialization, 'safe_globals')


def install(force_import: bool = False) -> bool:
    """Make mmengine's ``CheckpointLoader`` read local files with
    :func:`load_runner_checkpoint`.  Only when ``mmengine.runner.checkpoint``
    is imported already, unless ``force_import``; returns whether the loader
    is ours afterwards."""
    if 'mmengine.runner.checkpoint' not in sys.modules and not force_import:
        return False
    if not _scoped_allowlist_available():
        return False
    from mmengine.runner.checkpoint import CheckpointLoader
    current = CheckpointLoader._schemes.get('')
    if current is not _load_from_local:
        CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
    return True


def _load_from_local(filename: str, map_location=None):
    """The loader :func:`install` registers (mmengine's signature): a missing
    file fails as mmengine's own loader does."""
    import os.path as osp
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_runner_checkpoint(filename, map_location)
