# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""One interface, one backend per SAM family (SAM, HQ-SAM, SAM 2)."""
from torch import nn

from .base import Backend, ImageEmbedding
from .sam import SAMBackend


def backend_of(model: nn.Module) -> Backend:
    """The backend for a built model of any supported family."""
    if isinstance(model, Backend):
        return model
    module = type(model).__module__
    if module.startswith('segment_anything_hq.'):
        from .hq_sam import HQSAMBackend
        return HQSAMBackend(model)
    if module.startswith('segment_anything.'):
        return SAMBackend(model)
    if module.startswith('sam2.'):
        from .sam2 import SAM2Backend
        return SAM2Backend(model)
    raise TypeError(f'{type(model).__name__} ({module}) is not a SAM, HQ-SAM or SAM 2 model')


__all__ = ['Backend', 'ImageEmbedding', 'SAMBackend', 'backend_of']
