# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Reductions over boolean masks that PyTorch is slow at on a CPU."""
import torch
from torch import Tensor


def any_along(masks: Tensor, dim) -> Tensor:
    """``masks.any(dim)`` for a bool tensor, as a max over its bytes: the same
    result, about ten times faster than PyTorch's bool reduction on a CPU.
    ``dim``: an int or a tuple of ints (each reduced dim must be non-empty)."""
    return masks.view(torch.uint8).amax(dim) > 0
