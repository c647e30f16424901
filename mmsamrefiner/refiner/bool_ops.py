# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Reductions and copies of boolean masks that PyTorch is slow at on a CPU."""
from typing import Optional

import torch
from torch import Tensor


def any_along(masks: Tensor, dim) -> Tensor:
    """``masks.any(dim)`` for a bool tensor, as a max over its bytes: the same
    result, about ten times faster than PyTorch's bool reduction on a CPU.
    ``dim``: an int or a tuple of ints (each reduced dim must be non-empty)."""
    return masks.view(torch.uint8).amax(dim) > 0


def count_along(masks: Tensor, dim) -> Tensor:
    """``masks.sum(dim)`` for a bool tensor, as an int32 sum of its bytes: the
    same counts (below 2**31), about ten times faster than PyTorch's bool
    sum on a CPU."""
    return masks.view(torch.uint8).sum(dim, dtype=torch.int32)


def replace_masks_(masks: Tensor, replacement: Tensor, which: Tensor,
                   by_where: Optional[bool] = None) -> Tensor:
    """``masks[which] = replacement[which]`` in place, for (N, ...) tensors
    and an (N,) bool ``which``; returns ``masks``.

    ``by_where``: as ``torch.where`` over all masks, which reads nothing back
    to the host (boolean indexing does: a sync on a GPU); else by boolean
    indexing, which copies only the chosen masks (about 100x faster on a CPU,
    where reading ``which`` costs nothing).  None (default): ``torch.where``
    except on the CPU.  The same masks either way.
    """
    if by_where is None:
        by_where = masks.device.type != 'cpu'
    if by_where:
        chosen = which.view((-1, ) + (1, ) * (masks.dim() - 1))
        return torch.where(chosen, replacement, masks, out=masks)
    masks[which] = replacement[which]
    return masks
