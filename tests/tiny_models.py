# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Tiny models and hand-made masks the tests build: a SAM with SAM's
architecture but tiny (and SAM 2's), and discs."""
import numpy as np
import torch

from mmsamrefiner.refiner.sam import build_sam_model

#: A SAM with SAM's architecture but tiny: 128-pixel input, 8x8 embedding grid,
#: 32x32 low-res masks.  Sizes are read from the model everywhere.
TINY_SAM_ARCH = dict(
    embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=128,
    patch_size=16, prompt_embed_dim=32, window_size=4, decoder_mlp_dim=64,
    decoder_num_heads=2, iou_head_hidden_dim=32, mask_in_chans=4)


#: A SAM 2 built from its own hydra config (Hiera-T's) with small sizes:
#: 128-pixel input, 8x8 embedding grid, 32x32 low-res masks, 32 channels.
TINY_SAM2_ARCH = dict(base='hiera_t', overrides=[
    'model.image_size=128',
    'model.image_encoder.trunk.embed_dim=16',
    'model.image_encoder.trunk.stages=[1,1,2,1]',
    'model.image_encoder.trunk.global_att_blocks=[3]',
    'model.image_encoder.neck.backbone_channel_list=[128,64,32,16]',
    'model.image_encoder.neck.d_model=32',
    'model.image_encoder.neck.position_encoding.num_pos_feats=32',
    'model.memory_attention.d_model=32',
    'model.memory_attention.num_layers=1',
    'model.memory_attention.layer.d_model=32',
    'model.memory_attention.layer.dim_feedforward=64',
    'model.memory_attention.layer.self_attention.embedding_dim=32',
    'model.memory_attention.layer.self_attention.feat_sizes=[8,8]',
    'model.memory_attention.layer.cross_attention.embedding_dim=32',
    'model.memory_attention.layer.cross_attention.feat_sizes=[8,8]',
    'model.memory_attention.layer.cross_attention.kv_in_dim=16',
    'model.memory_encoder.out_dim=16',
    'model.memory_encoder.position_encoding.num_pos_feats=16',
    'model.memory_encoder.fuser.layer.dim=32',
    'model.memory_encoder.fuser.num_layers=1',
])


def make_tiny_sam(seed: int = 0):
    torch.manual_seed(seed)
    return build_sam_model(TINY_SAM_ARCH)


def disk(height, width, cx, cy, r):
    yy, xx = np.mgrid[:height, :width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r ** 2
