# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAM's mask-decoder attention through PyTorch's fused attention.

The two-way transformer of SAM's (and HQ-SAM's) mask decoder attends between
the prompt tokens and the image embedding's grid, per head::

    softmax(q k^T / sqrt(c)) v

which the model's own ``Attention`` module computes in three passes over a
(heads, queries, keys) matrix.  :func:`sdpa_forward` hands the same ``q, k,
v`` to :func:`torch.nn.functional.scaled_dot_product_attention` instead
(no mask, no dropout): the same function, with float rounding in another
order, and faster on the CPU as on GPUs (the decoder runs once per round
for every mask; docs/speed.md).

:func:`set_decoder_attention` switches the attention modules of a built mask
decoder in place, either way, by giving each module (or taking back) an
instance ``forward``; parameters and state dict are not touched.  SAM 2's
decoder has its own attention, which already uses the fused kernel: it has no
sites here.
"""
import types
from typing import List

import torch.nn.functional as F
from torch import Tensor, nn

#: Settings of ``decoder_attention``: the model's own attention, or SDPA.
DECODER_ATTENTIONS = ('eager', 'sdpa')

#: Modules whose ``Attention`` class (the two-way transformer's) is switched.
TWO_WAY_ATTENTION_MODULES = ('segment_anything.modeling.transformer',
                             'segment_anything_hq.modeling.transformer')


def is_two_way_attention(module: nn.Module) -> bool:
    """True for an attention module of SAM's or HQ-SAM's two-way transformer."""
    cls = type(module)
    return cls.__name__ == 'Attention' and cls.__module__ in TWO_WAY_ATTENTION_MODULES


def sdpa_forward(self: nn.Module, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """The two-way transformer's attention (``self``: its module) on (B, Nq,
    C), (B, Nk, C), (B, Nk, C) tokens, through the fused kernel; returns (B,
    Nq, C) like the module's own ``forward``."""
    q = self._separate_heads(self.q_proj(q), self.num_heads)  # (B, heads, Nq, c)
    k = self._separate_heads(self.k_proj(k), self.num_heads)
    v = self._separate_heads(self.v_proj(v), self.num_heads)
    return self.out_proj(self._recombine_heads(F.scaled_dot_product_attention(q, k, v)))


def decoder_attention_sites(model: nn.Module) -> List[nn.Module]:
    """The attention modules of ``model``'s mask decoder (none for a model
    without one of SAM's or HQ-SAM's)."""
    decoder = getattr(model, 'mask_decoder', None)
    if decoder is None:
        return []
    return [module for module in decoder.modules() if is_two_way_attention(module)]


def check_decoder_attention(mode: str) -> None:
    if mode not in DECODER_ATTENTIONS:
        raise ValueError(f'decoder_attention must be one of {DECODER_ATTENTIONS}, got {mode!r}')


def set_decoder_attention(sites: List[nn.Module], mode: str) -> None:
    """Run the attention modules ``sites`` (:func:`decoder_attention_sites`)
    as ``mode``: ``'sdpa'`` (:func:`sdpa_forward`) or ``'eager'`` (the
    module's own ``forward``)."""
    check_decoder_attention(mode)
    for module in sites:
        if mode == 'sdpa':
            module.forward = types.MethodType(sdpa_forward, module)
        else:
            module.__dict__.pop('forward', None)
