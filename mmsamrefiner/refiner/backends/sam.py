# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The backend of the original SAM (``segment_anything``)."""
from typing import Tuple

import numpy as np
import torch
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor, nn

from .base import Backend, ImageEmbedding


class SAMBackend(Backend):
    """SAM: longest side resized to the encoder input, padded to a square."""
    family = 'sam'

    @property
    def encoder_size(self) -> int:
        return self.model.image_encoder.img_size

    @property
    def embedding_size(self) -> Tuple[int, int]:
        return tuple(self.model.prompt_encoder.image_embedding_size)

    @property
    def low_res_size(self) -> Tuple[int, int]:
        return tuple(self.model.prompt_encoder.mask_input_size)

    @property
    def mask_threshold(self) -> float:
        return self.model.mask_threshold

    @property
    def iou_head(self) -> nn.Module:
        return self.model.mask_decoder.iou_prediction_head

    def preprocess(self, rgb: np.ndarray) -> Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, S, S) normalised, padded input."""
        resized = ResizeLongestSide(self.encoder_size).apply_image(rgb)
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)
        return self.model.preprocess(pixels[None].float())

    def encode_batch(self, rgbs, dtype=None):
        embeddings = self.run_encoder(torch.cat([self.preprocess(rgb) for rgb in rgbs]), dtype)
        return [ImageEmbedding(embeddings[i:i + 1].float(), self.input_size(rgb.shape[:2]),
                               tuple(rgb.shape[:2])) for i, rgb in enumerate(rgbs)]

    def prompt_embeddings(self, points, labels, boxes, mask_inputs):
        return self.model.prompt_encoder(
            points=None if points is None else (points, labels), boxes=boxes,
            masks=mask_inputs)

    def decode(self, embedding, points, labels, boxes, mask_inputs):
        sparse, dense = self.prompt_embeddings(points, labels, boxes, mask_inputs)
        return self.model.mask_decoder(
            image_embeddings=embedding.embedding,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True)
