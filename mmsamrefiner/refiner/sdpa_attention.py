# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAM's ViT attention through PyTorch's fused attention (opt-in, for GPUs).

The attention blocks of SAM's (and HQ-SAM's) ViT image encoder compute, on an
``h x w`` grid of tokens (a window, or the whole embedding grid in the global
blocks), per head::

    softmax(scale * q k^T + bias) v,
    bias[(y, x), (y', x')] = q(y, x) . Rh[y - y'] + q(y, x) . Rw[x - x']

where ``Rh`` and ``Rw`` are the learned relative-position tables
(``rel_pos_h``: (2h - 1, C), ``rel_pos_w``: (2w - 1, C)).  The model's own
module builds ``scale * q k^T``, adds the bias and takes the softmax in three
passes over an (heads, hw, hw) matrix.  :class:`SDPAAttention` builds only the
bias, as an additive attention mask, and hands ``q, k, v`` and the mask to
:func:`torch.nn.functional.scaled_dot_product_attention`, which on GPUs runs
a fused kernel (with an additive mask, PyTorch's memory-efficient one).  The
result is the same function; in float32 the embeddings agree to float
rounding (docs/speed.md gives the measured differences).  On the CPU it is
no faster (docs/speed.md): the setting is for GPUs.

:func:`set_encoder_attention` swaps the attention modules of a built image
encoder in place, either way.  The SDPA module holds the *same* parameter
objects under the same names, so the state dict (and every digest of it)
does not change, and moving the model moves both.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Settings of ``encoder_attention``: the model's own attention, or SDPA.
ENCODER_ATTENTIONS = ('eager', 'sdpa')

#: Modules whose ``Attention`` class is the one :class:`SDPAAttention` replaces.
VIT_ATTENTION_MODULES = ('segment_anything.modeling.image_encoder',
                         'segment_anything_hq.modeling.image_encoder')


def is_vit_attention(module: nn.Module) -> bool:
    """True for the attention module of SAM's or HQ-SAM's ViT blocks."""
    cls = type(module)
    return cls.__name__ == 'Attention' and cls.__module__ in VIT_ATTENTION_MODULES


def relative_position_table(rel_pos: Tensor, length: int) -> Tensor:
    """Gather a learned relative-position table into per-pair embeddings.

    Args:
        rel_pos: (2 * length - 1, C), row ``d + length - 1`` the embedding of
            the offset ``d = i - j``.
        length: tokens along the axis.

    Returns:
        (length, length, C): entry ``[i, j]`` is the embedding of ``i - j``.
    """
    if rel_pos.shape[0] != 2 * length - 1:
        raise ValueError(f'a relative-position table of {rel_pos.shape[0]} rows does not fit '
                         f'{length} tokens along an axis (it needs {2 * length - 1})')
    positions = torch.arange(length, device=rel_pos.device)
    offsets = positions[:, None] - positions[None, :] + (length - 1)
    return rel_pos[offsets]


def relative_position_bias(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                           grid: Tuple[int, int]) -> Tensor:
    """The decomposed relative-position bias as an additive attention mask.

    Args:
        q: (B, heads, h * w, C) queries (unscaled), tokens in row-major order.
        rel_pos_h, rel_pos_w: (2h - 1, C) and (2w - 1, C) tables.
        grid: (h, w) of the token grid.

    Returns:
        (B, heads, h * w, h * w) bias in ``q``'s dtype: query (y, x) to key
        (y', x') gets ``q . Rh[y - y'] + q . Rw[x - x']``.
    """
    height, width = grid
    batch, heads, _, channels = q.shape
    table_h = relative_position_table(rel_pos_h, height).to(q.dtype)  # (h, h', C)
    table_w = relative_position_table(rel_pos_w, width).to(q.dtype)  # (w, w', C)
    q_grid = q.reshape(batch, heads, height, width, channels)
    along_h = torch.einsum('bnyxc,ykc->bnyxk', q_grid, table_h)  # (B, n, h, w, h')
    along_w = torch.einsum('bnyxc,xkc->bnyxk', q_grid, table_w)  # (B, n, h, w, w')
    bias = along_h[..., :, None] + along_w[..., None, :]  # (B, n, h, w, h', w')
    return bias.reshape(batch, heads, height * width, height * width)


class SDPAAttention(nn.Module):
    """A ViT attention block of SAM run by ``scaled_dot_product_attention``.

    Built from the model's own module (:func:`is_vit_attention`), whose
    parameters it shares under the same names (``qkv``, ``proj``,
    ``rel_pos_h``, ``rel_pos_w``); that module is kept, outside the module
    tree, for :func:`set_encoder_attention` to put back.

    Args:
        attention: the block's attention module.

    Forward: (B, h, w, C) tokens -> (B, h, w, C).
    """

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        if not is_vit_attention(attention):
            raise TypeError('SDPAAttention replaces the attention of SAM\'s ViT blocks, got '
                            f'{type(attention).__module__}.{type(attention).__name__}')
        self.num_heads = attention.num_heads
        self.scale = attention.scale
        self.use_rel_pos = attention.use_rel_pos
        self.qkv = attention.qkv
        self.proj = attention.proj
        if self.use_rel_pos:
            self.rel_pos_h = attention.rel_pos_h
            self.rel_pos_w = attention.rel_pos_w
        self.__dict__['eager'] = attention  # not a child: no second copy of the keys

    def forward(self, tokens: Tensor) -> Tensor:
        batch, height, width, channels = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, height * width, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, hw, C')
        bias = None
        if self.use_rel_pos:
            bias = relative_position_bias(q, self.rel_pos_h, self.rel_pos_w, (height, width))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        attended = attended.transpose(1, 2).reshape(batch, height, width, channels)
        return self.proj(attended)

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, use_rel_pos={self.use_rel_pos}'


def attention_sites(image_encoder: nn.Module) -> List[Tuple[nn.Module, str]]:
    """``(parent, name)`` of every ViT attention module of an image encoder
    (SAM's own or :class:`SDPAAttention`): ``getattr(parent, name)`` is the
    module.  Empty for encoders without them (SAM 2's Hiera, HQ-SAM's
    TinyViT, the toy SAM's convolutions)."""
    return [(parent, name) for parent in image_encoder.modules()
            for name, child in parent.named_children()
            if is_vit_attention(child) or isinstance(child, SDPAAttention)]


def check_encoder_attention(image_encoder: nn.Module, mode: str) -> None:
    """Refuse an unknown ``mode``, and ``'sdpa'`` for an encoder without
    SAM's ViT attention blocks."""
    if mode not in ENCODER_ATTENTIONS:
        raise ValueError(f'encoder_attention must be one of {ENCODER_ATTENTIONS}, got {mode!r}')
    if mode == 'sdpa' and not attention_sites(image_encoder):
        raise ValueError(
            "encoder_attention='sdpa' replaces the attention of SAM's ViT image encoder "
            f'(SAM, HQ-SAM ViT-B/L/H); {type(image_encoder).__name__} has no such blocks '
            "(SAM 2's Hiera attends through SDPA already); use 'eager'")


def set_encoder_attention(image_encoder: nn.Module, mode: str,
                          sites: Optional[List[Tuple[nn.Module, str]]] = None) -> int:
    """Make every ViT attention block of ``image_encoder`` run ``mode``
    (``'eager'``: the model's own module; ``'sdpa'``: :class:`SDPAAttention`),
    in place.  Blocks already in that mode are left as they are.

    Args:
        image_encoder: a built image encoder.
        mode: one of :data:`ENCODER_ATTENTIONS`.
        sites: its :func:`attention_sites`, when the caller keeps them (the
            walk over the encoder's modules is then skipped).

    Returns:
        How many blocks were swapped.
    """
    if sites is None:
        check_encoder_attention(image_encoder, mode)
        sites = attention_sites(image_encoder)
    swapped = 0
    for parent, name in sites:
        module = getattr(parent, name)
        if mode == 'sdpa' and not isinstance(module, SDPAAttention):
            setattr(parent, name, SDPAAttention(module))
            swapped += 1
        elif mode == 'eager' and isinstance(module, SDPAAttention):
            setattr(parent, name, module.eager)
            swapped += 1
    return swapped


def encoder_attention_of(image_encoder: nn.Module) -> str:
    """``'sdpa'`` when the encoder's ViT attention blocks all run
    :class:`SDPAAttention`, else ``'eager'``."""
    modules = [getattr(parent, name) for parent, name in attention_sites(image_encoder)]
    return 'sdpa' if modules and all(isinstance(m, SDPAAttention) for m in modules) \
        else 'eager'
