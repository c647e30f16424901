# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Count the operations that make the host wait for an accelerator.

On CUDA these read a value back to the host (a sync): ``item`` / ``int`` /
``float`` / ``bool`` of a tensor and ``tolist`` (one ``_local_scalar_dense``
or one copy to the host each), ``nonzero`` (its size is data-dependent; boolean
indexing and boolean ``index_put_`` call it), ``masked_select``, ``unique``,
``repeat_interleave`` without an output size, and copies between the host and
the device.  Counted on any device, the CPU included, where none of them
waits, so the count of a CUDA run can be read on a CPU-only machine.
"""
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

_SYNCING_OPS = ('_local_scalar_dense', 'nonzero', 'masked_select', 'unique', '_unique',
                '_unique2', 'unique_consecutive', 'unique_dim')


class _DispatchCounter(TorchDispatchMode):

    def __init__(self, counts):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.split('::')[-1]
        if name in _SYNCING_OPS or (name == 'repeat_interleave'
                                    and (kwargs or {}).get('output_size') is None):
            self.counts[name] += 1
        elif name in ('index', 'index_put', 'index_put_', '_index_put_impl_'):
            # a boolean index is turned into integer indices by ``nonzero``
            masks = [i for i in args[1] if isinstance(i, torch.Tensor)
                     and i.dtype in (torch.bool, torch.uint8)]
            if masks:
                self.counts['boolean index'] += len(masks)
        elif name in ('_to_copy', 'copy_'):
            devices = {a.device.type for a in args if isinstance(a, torch.Tensor)}
            target = (kwargs or {}).get('device')
            if target is not None:
                devices.add(torch.device(target).type)
            if len(devices) > 1:
                self.counts['host-device copy'] += 1
        return func(*args, **(kwargs or {}))


class _FunctionCounter(TorchFunctionMode):
    """``tolist`` reads the data without a dispatched op."""

    def __init__(self, counts):
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', None) == 'tolist':
            self.counts['tolist'] += 1
        return func(*args, **(kwargs or {}))


class count_host_syncs:
    """``with count_host_syncs() as syncs: ...``; then ``syncs.total`` and
    ``syncs.counts`` (a Counter by operation)."""

    def __enter__(self):
        self.counts = Counter()
        self._modes = [_FunctionCounter(self.counts), _DispatchCounter(self.counts)]
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
