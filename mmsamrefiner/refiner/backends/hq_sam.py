# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""HQ-SAM (``segment-anything-hq``, the ``hq`` extra): SAM plus a high-quality
output token fed with early ViT (or TinyViT) features.

Candidates: HQ-SAM's own multimask path keeps the best of SAM's three masks
(by predicted IoU) and adds the HQ token's mask to it.  This backend returns
all three sums ``sam_mask_i + hq_mask`` with SAM's IoU predictions, so the
refiner's choice (highest predicted IoU) gives exactly HQ-SAM's mask, and the
IoU adaptor sees the three candidates it ranks.
"""
import torch
from torch import nn

from .base import ImageEmbedding
from .sam import SAMBackend

HQ_INSTALL_HINT = ("HQ-SAM needs the 'hq' extra: pip install -e '.[hq]' "
                   '(segment-anything-hq==0.3 and timm, which it imports)')


def import_hq():
    """The ``segment_anything_hq`` package, or an ImportError saying how to install it."""
    try:
        import segment_anything_hq
    except ImportError as error:
        raise ImportError(f'{HQ_INSTALL_HINT}; missing: {error.name}') from error
    return segment_anything_hq


class HQSAMBackend(SAMBackend):
    """HQ-SAM: SAM's frames; the image embedding plus ``hq_features``."""
    family = 'hq'

    def encode_batch(self, rgbs, dtype=None):
        pixels = torch.cat([self.preprocess(rgb) for rgb in rgbs])
        embeddings, interm = self.run_encoder(pixels, dtype)
        embeddings = embeddings.float()
        decoder = self.model.mask_decoder
        # The HQ features depend on the image only: computed once here.
        vit_features = interm[0].float().permute(0, 3, 1, 2)
        hq_features = decoder.embedding_encoder(embeddings) + decoder.compress_vit_feat(
            vit_features)
        return [ImageEmbedding(embeddings[i:i + 1], self.input_size(rgb.shape[:2]),
                               tuple(rgb.shape[:2]), dict(hq_features=hq_features[i:i + 1]))
                for i, rgb in enumerate(rgbs)]

    def decode(self, embedding, points, labels, boxes, mask_inputs):
        sparse, dense = self.prompt_embeddings(points, labels, boxes, mask_inputs)
        decoder = self.model.mask_decoder
        masks, iou_predictions = decoder.predict_masks(
            image_embeddings=embedding.embedding,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            hq_features=embedding.features['hq_features'])
        last = decoder.num_mask_tokens - 1  # SAM's tokens are 0..last-1; the HQ token is last
        candidates = masks[:, 1:last] + masks[:, last:last + 1]
        return candidates, iou_predictions[:, 1:last]


#: HQ-SAM's official checkpoints (Hugging Face ``lkeab/hq-sam``).
HQ_CHECKPOINT_URLS = {
    arch: f'https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_{arch}.pth'
    for arch in ('vit_b', 'vit_l', 'vit_h', 'vit_tiny')
}

#: TinyViT of the light HQ-SAM (``vit_tiny``; its encoder input is fixed at 1024).
TINY_VIT = dict(img_size=1024, in_chans=3, num_classes=1000, embed_dims=[64, 128, 160, 320],
                depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7],
                mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.0, use_checkpoint=False,
                mbconv_expand_ratio=4.0, local_conv_size=3, layer_lr_decay=0.8)


def build_hq_sam_model(settings: dict, tiny_vit: bool = False) -> nn.Module:
    """A randomly initialised HQ-SAM from its own modules.

    Args:
        settings: full SAM architecture settings (``resolve_sam_arch``); for
            ``tiny_vit`` only the prompt/decoder ones are used.
        tiny_vit: the light HQ-SAM's TinyViT encoder instead of a ViT.
    """
    from functools import partial

    from ..sam import PIXEL_MEAN, PIXEL_STD
    hq = import_hq()
    modeling = hq.modeling
    dim = settings['prompt_embed_dim']
    if tiny_vit:
        encoder = modeling.TinyViT(**TINY_VIT)
        img_size, vit_dim = TINY_VIT['img_size'], TINY_VIT['embed_dims'][2]
    else:
        img_size, vit_dim = settings['img_size'], settings['embed_dim']
        encoder = modeling.ImageEncoderViT(
            img_size=img_size, patch_size=settings['patch_size'],
            embed_dim=settings['embed_dim'], depth=settings['depth'],
            num_heads=settings['num_heads'], mlp_ratio=settings['mlp_ratio'], out_chans=dim,
            qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=settings['window_size'],
            global_attn_indexes=tuple(settings['global_attn_indexes']))
    grid = img_size // settings['patch_size']
    sam = modeling.Sam(
        image_encoder=encoder,
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=dim, image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size), mask_in_chans=settings['mask_in_chans']),
        mask_decoder=modeling.MaskDecoderHQ(
            num_multimask_outputs=settings['num_multimask_outputs'],
            transformer=modeling.TwoWayTransformer(
                depth=settings['decoder_depth'], embedding_dim=dim,
                mlp_dim=settings['decoder_mlp_dim'], num_heads=settings['decoder_num_heads']),
            transformer_dim=dim, iou_head_depth=settings['iou_head_depth'],
            iou_head_hidden_dim=settings['iou_head_hidden_dim'], vit_dim=vit_dim),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD))
    return sam.eval()
