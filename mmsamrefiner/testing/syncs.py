# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Counting the calls that would make the host wait for a GPU, on any device.

``torch.cuda.set_sync_debug_mode`` needs CUDA; this counts by name, on the
CPU as well, the calls that copy between host and device when the tensors
live on a GPU (each is a host sync there):

* device to host: ``Tensor.item``, ``.tolist``, ``.cpu``, ``int()`` /
  ``float()`` / ``bool()`` / ``operator.index`` of a tensor, ``nonzero`` /
  ``argwhere`` / one-argument ``torch.where`` / ``masked_select`` /
  ``unique`` (their output size), and indexing with a bool tensor
  (``bool index``);
* host to device: ``torch.tensor`` / ``torch.as_tensor`` with a ``device``
  argument and ``torch.from_numpy`` (host data for the device).

A CPU run counts the same calls a GPU run makes, since the code takes the
same path (calls that only a GPU run makes, e.g. ``.to(device)`` of a host
array, are covered by the ``torch.from_numpy`` before them).  Calls made
inside PyTorch's C++ code are not seen.
"""
import functools
from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch


def _is_bool_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(part, torch.Tensor) and part.dtype == torch.bool for part in parts)


#: (owner, attribute, label, when): the calls counted, when ``when`` accepts
#: their arguments.
_COUNTED = [
    (torch.Tensor, 'item', 'item', None),
    (torch.Tensor, 'tolist', 'tolist', None),
    (torch.Tensor, 'cpu', 'cpu', None),
    (torch.Tensor, '__int__', 'int', None),
    (torch.Tensor, '__float__', 'float', None),
    (torch.Tensor, '__bool__', 'bool', None),
    (torch.Tensor, '__index__', 'index', None),
    (torch.Tensor, 'nonzero', 'nonzero', None),
    (torch.Tensor, 'argwhere', 'nonzero', None),
    (torch.Tensor, 'masked_select', 'masked_select', None),
    (torch.Tensor, 'unique', 'unique', None),
    (torch.Tensor, '__getitem__', 'bool index', lambda self, index: _is_bool_index(index)),
    (torch.Tensor, '__setitem__', 'bool index',
     lambda self, index, value: _is_bool_index(index)),
    (torch, 'nonzero', 'nonzero', None),
    (torch, 'argwhere', 'nonzero', None),
    (torch, 'where', 'nonzero', lambda *args, **kwargs: len(args) + len(kwargs) == 1),
    (torch, 'masked_select', 'masked_select', None),
    (torch, 'unique', 'unique', None),
    (torch, 'tensor', 'to device', lambda *args, **kwargs: kwargs.get('device') is not None),
    (torch, 'as_tensor', 'to device', lambda *args, **kwargs: kwargs.get('device') is not None),
    (torch, 'from_numpy', 'to device', None),
]


def _counting(original: Callable, label: str, when: Optional[Callable],
              counts: Counter) -> Callable:
    @functools.wraps(original)
    def counted(*args, **kwargs):
        if when is None or when(*args, **kwargs):
            counts[label] += 1
        return original(*args, **kwargs)
    return counted


@contextmanager
def count_host_syncs() -> Iterator[Counter]:
    """Within the block, count the calls listed in the module's docstring.

    Yields:
        A ``Counter`` of calls by label (``'item'``, ``'tolist'``, ``'cpu'``,
        ``'int'``, ``'nonzero'``, ``'bool index'``, ``'to device'``, ...),
        filled as the block runs; ``sum(counts.values())`` is the total.

    Not thread-safe: it patches ``torch`` and ``torch.Tensor`` for the block.
    """
    counts: Counter = Counter()
    saved = []
    try:
        for owner, name, label, when in _COUNTED:
            had_own = name in vars(owner)
            original = getattr(owner, name)
            saved.append((owner, name, had_own, original))
            setattr(owner, name, _counting(original, label, when, counts))
        yield counts
    finally:
        for owner, name, had_own, original in reversed(saved):
            if had_own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
