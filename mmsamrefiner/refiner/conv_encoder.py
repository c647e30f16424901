# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A small convolutional image encoder for the toy SAM.

The toy SAM (``arch='toy'``) keeps segment_anything's own
:class:`~segment_anything.modeling.PromptEncoder` and
:class:`~segment_anything.modeling.MaskDecoder`; only the image encoder is
replaced by this network, which learns edges and shapes from generated scenes
far faster than a ViT trained from scratch.  It exposes what the rest of the
package reads from any SAM image encoder: ``img_size`` (the side of the padded
square input) and an embedding of ``img_size // stride`` cells a side.
"""
from typing import Sequence

import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn


def conv_norm_act(in_chans: int, out_chans: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, GroupNorm (8 groups), GELU."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False),
        nn.GroupNorm(8, out_chans), nn.GELU())


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection; keeps shape (B, C, H, W)."""

    def __init__(self, chans: int) -> None:
        super().__init__()
        self.conv1 = conv_norm_act(chans, chans)
        self.conv2 = nn.Sequential(nn.Conv2d(chans, chans, 3, 1, 1, bias=False),
                                   nn.GroupNorm(8, chans))

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x + self.conv2(self.conv1(x)))


class ConvImageEncoder(nn.Module):
    """Five stride-2 stages; the last ``len(fused)`` are fused at ``stride``.

    Args:
        img_size: side of the square, padded input (pixels).
        out_chans: channels of the embedding (the SAM's prompt embedding
            dimension).
        widths: channels of the five stages (strides 2, 4, 8, 16, 32).
        depths: residual blocks after each stage's stride-2 convolution.
        stride: stride of the embedding: 8 or 16.  The stages from this stride
            down are projected to ``out_chans``, upsampled (bilinear) to it and
            summed, then a 3x3 convolution and SAM's LayerNorm2d finish the
            embedding, as SAM's neck does.

    Shapes:
        ``forward``: (B, 3, img_size, img_size) normalised pixels ->
        (B, out_chans, img_size // stride, img_size // stride).
    """

    def __init__(self, img_size: int, out_chans: int,
                 widths: Sequence[int] = (24, 32, 64, 96, 128),
                 depths: Sequence[int] = (0, 1, 2, 2, 2), stride: int = 8) -> None:
        super().__init__()
        if stride not in (8, 16):
            raise ValueError(f'ConvImageEncoder stride must be 8 or 16, got {stride}')
        if img_size % 32:
            raise ValueError(f'ConvImageEncoder img_size must be a multiple of 32, got {img_size}')
        self.img_size = img_size
        self.stride = stride
        self.stages = nn.ModuleList()
        in_chans = 3
        for width, depth in zip(widths, depths):
            self.stages.append(nn.Sequential(
                conv_norm_act(in_chans, width, stride=2),
                *[ResidualBlock(width) for _ in range(depth)]))
            in_chans = width
        first_fused = {8: 2, 16: 3}[stride]  # index of the stage at `stride`
        self.first_fused = first_fused
        self.laterals = nn.ModuleList(
            nn.Conv2d(width, out_chans, 1) for width in widths[first_fused:])
        self.neck = nn.Sequential(
            nn.Conv2d(out_chans, out_chans, 3, 1, 1, bias=False),
            LayerNorm2d(out_chans))

    def forward(self, x: Tensor) -> Tensor:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        fused = features[self.first_fused:]
        size = fused[0].shape[-2:]
        out = self.laterals[0](fused[0])
        for lateral, feature in zip(self.laterals[1:], fused[1:]):
            out = out + F.interpolate(lateral(feature), size=size, mode='bilinear',
                                      align_corners=False)
        return self.neck(out)
