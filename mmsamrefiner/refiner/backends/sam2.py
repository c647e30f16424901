# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAM 2 (``sam2``, the ``sam2`` extra), its image path.

Frames differ from SAM's: the image is resized to the full encoder square
(aspect ratio not kept, no padding; ``input_size`` is ``(S, S)``), pixels are
scaled to [0, 1] and normalised with ImageNet's mean/std, and low-res logits
are resized straight to the image (one bilinear step).  The decoder also reads
two higher-resolution feature levels, computed once per image.

Low-res logits are returned unclamped, as ``SAM2ImagePredictor`` upsamples
them: it clamps to +-32 only the low-res logits it hands back (for reuse as a
mask input), after upsampling.  Trained weights give logits far beyond 32;
clamping before the bilinear resize would move the masks' boundaries.
"""
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Backend, ImageEmbedding

_MEAN = (0.485, 0.456, 0.406)  # RGB, on [0, 1] pixels
_STD = (0.229, 0.224, 0.225)


class SAM2Backend(Backend):
    """SAM 2's image path (see the module docstring)."""
    family = 'sam2'
    upscale_through_encoder = False

    @property
    def encoder_size(self) -> int:
        return self.model.image_size

    @property
    def embedding_size(self) -> Tuple[int, int]:
        return tuple(self.model.sam_prompt_encoder.image_embedding_size)

    @property
    def low_res_size(self) -> Tuple[int, int]:
        return tuple(self.model.sam_prompt_encoder.mask_input_size)

    @property
    def iou_head(self) -> nn.Module:
        return self.model.sam_mask_decoder.iou_prediction_head

    def input_size(self, original_size):
        return self.encoder_size, self.encoder_size  # stretched to the square

    def valid_grid(self, input_size):
        return self.embedding_size  # no padding

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, S, S): [0, 1], resized (bilinear,
        antialiased), normalised."""
        pixels = torch.as_tensor(rgb, device=self.device).permute(2, 0, 1)[None].float() / 255
        size = (self.encoder_size, self.encoder_size)
        pixels = F.interpolate(pixels, size, mode='bilinear', align_corners=False, antialias=True)
        mean = torch.tensor(_MEAN, device=self.device)[:, None, None]
        std = torch.tensor(_STD, device=self.device)[:, None, None]
        return (pixels - mean) / std

    def forward_encoder(self, pixels):
        return self.model.forward_image(pixels)

    def encode_batch(self, rgbs, dtype=None):
        model = self.model
        backbone_out = self.run_encoder(torch.cat([self.preprocess(rgb) for rgb in rgbs]), dtype)
        _, vision_feats, _, feat_sizes = model._prepare_backbone_features(backbone_out)
        if model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
        # (HW, B, C) -> (B, C, H, W), finest level first
        levels = [feat.float().permute(1, 2, 0).reshape(len(rgbs), -1, *size)
                  for feat, size in zip(vision_feats, feat_sizes)]
        return [ImageEmbedding(levels[-1][b:b + 1], self.input_size(rgb.shape[:2]),
                               tuple(rgb.shape[:2]),
                               {f'high_res_{i}': level[b:b + 1]
                                for i, level in enumerate(levels[:-1])})
                for b, rgb in enumerate(rgbs)]

    def decode(self, embedding, points, labels, boxes, mask_inputs):
        # Boxes go in as two corner points labelled 2 and 3, before the points.
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            corner_labels = torch.tensor([2, 3], device=boxes.device).expand(len(boxes), 2)
            if points is None:
                points, labels = corners, corner_labels
            else:
                points = torch.cat([corners, points], 1)
                labels = torch.cat([corner_labels, labels], 1)
        sparse, dense = self.model.sam_prompt_encoder(
            points=None if points is None else (points, labels), boxes=None, masks=mask_inputs)
        high_res = [embedding.features[f'high_res_{i}']
                    for i in range(len(embedding.features))]
        low_res, iou_predictions, _, _ = self.model.sam_mask_decoder(
            image_embeddings=embedding.embedding,
            image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=True,
            high_res_features=high_res)
        # Not clamped: the masks are upsampled from these (see the module docstring).
        return low_res, iou_predictions
