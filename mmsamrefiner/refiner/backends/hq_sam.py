# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""HQ-SAM (``segment-anything-hq``, the ``hq`` extra): SAM plus a high-quality
output token fed with early ViT (or TinyViT) features.

Candidates: HQ-SAM's own multimask path keeps the best of SAM's three masks
(by predicted IoU) and adds the HQ token's mask to it.  This backend returns
all three sums ``sam_mask_i + hq_mask`` with SAM's IoU predictions, so the
refiner's choice (highest predicted IoU) gives exactly HQ-SAM's mask, and the
IoU adapter sees the three candidates it ranks.
"""
import torch

from .base import ImageEmbedding
from .sam import SAMBackend


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
