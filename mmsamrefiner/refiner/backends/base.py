# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The one interface the refiner talks to, whatever the SAM family.

A backend wraps a built model (SAM, HQ-SAM, SAM 2) and knows its frames:

* ``encode_batch(rgbs)``: images, (H, W, 3) uint8 RGB of any sizes, in one
  encoder pass, to one :class:`ImageEmbedding` each (the main embedding plus
  whatever else the family's decoder needs, in ``features``);
* ``decode(embedding, points, labels, boxes, mask_inputs)``: prompts in the
  **encoder-input frame** (pixels of the image resized to ``input_size``) to
  ``(low_res_logits (N, M, h, w), iou_predictions (N, M))``, M candidates;
* sizes read from the model: ``encoder_size`` (square input side),
  ``embedding_size``, ``low_res_size``; ``input_size(original_size)``, the
  resized image inside the square (the rest is padding);
* ``iou_head``: the MLP scoring the candidates (its last linear layer is where
  SAMRefiner++'s adapter sits); ``image_encoder``.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..resize import resized_shape


@dataclass
class ImageEmbedding:
    """A model's encoding of one image, reusable across refinement calls.

    Attributes:
        embedding: (1, C, h, w) float, the main image embedding (padded input
            frame); what the elastic box compares.
        input_size: (h, w) of the image resized to the encoder, before padding.
        original_size: (H, W) of the original image.
        features: other tensors the family's decoder needs (HQ-SAM's early
            ViT features, SAM 2's high-resolution features), by name.
    """
    embedding: Tensor
    input_size: Tuple[int, int]
    original_size: Tuple[int, int]
    features: Dict[str, Tensor] = field(default_factory=dict)

    def to(self, device) -> 'ImageEmbedding':
        return ImageEmbedding(self.embedding.to(device), self.input_size, self.original_size,
                              {k: v.to(device) for k, v in self.features.items()})


class Backend:
    """Base of the per-family backends (see the module docstring)."""

    #: 'sam', 'hq' or 'sam2'.
    family: str = ''
    #: SAM's postprocessing resizes low-res logits to the encoder square, crops
    #: the padding and resizes to the image; False: straight to the image.
    upscale_through_encoder: bool = True

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        #: :meth:`forward_encoder` through ``torch.compile`` (:meth:`compile_encoder`), or None.
        self.compiled_encoder = None

    # -- sizes ------------------------------------------------------------------
    @property
    def encoder_size(self) -> int:
        raise NotImplementedError

    @property
    def embedding_size(self) -> Tuple[int, int]:
        raise NotImplementedError

    @property
    def low_res_size(self) -> Tuple[int, int]:
        raise NotImplementedError

    @property
    def mask_threshold(self) -> float:
        return 0.0

    def input_size(self, original_size: Tuple[int, int]) -> Tuple[int, int]:
        """(h, w) of an (H, W) image resized for the encoder (longest side)."""
        return resized_shape(*original_size, self.encoder_size)

    def valid_grid(self, input_size: Tuple[int, int]) -> Optional[Tuple[int, int]]:
        """Embedding cells covering the image (not padding); None: derive
        from the image's aspect ratio (SAM's padding)."""
        return None

    # -- parts ------------------------------------------------------------------
    @property
    def image_encoder(self) -> nn.Module:
        return self.model.image_encoder

    @property
    def iou_head(self) -> nn.Module:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- the two steps ------------------------------------------------------------
    def encode_batch(self, rgbs: List[np.ndarray],
                     dtype: Optional[torch.dtype] = None) -> List[ImageEmbedding]:
        """Several images (any sizes) in one encoder pass, one embedding each."""
        raise NotImplementedError

    def decode(self, embedding: ImageEmbedding, points: Optional[Tensor],
               labels: Optional[Tensor], boxes: Optional[Tensor],
               mask_inputs: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward_encoder(self, pixels: Tensor):
        """The family's image-encoder pass on preprocessed (B, 3, S, S) pixels."""
        return self.model.image_encoder(pixels)

    def compile_encoder(self, **options) -> None:
        """Run :meth:`forward_encoder` through ``torch.compile(**options)``
        from now on; it compiles on its first call (and again for new input
        shapes or dtypes)."""
        self.compiled_encoder = torch.compile(self.forward_encoder, **options)

    def run_encoder(self, pixels: Tensor, dtype: Optional[torch.dtype]):
        """:meth:`forward_encoder` (compiled after :meth:`compile_encoder`),
        under autocast when ``dtype`` is given."""
        forward = self.forward_encoder if self.compiled_encoder is None else self.compiled_encoder
        if dtype is None:
            return forward(pixels)
        with torch.autocast(pixels.device.type, dtype=dtype):
            return forward(pixels)

    def describe(self) -> str:
        return (f'family={self.family!r}, encoder_size={self.encoder_size}, '
                f'embedding_size={self.embedding_size}, low_res_size={self.low_res_size}, '
                f'encoder_params={sum(p.numel() for p in self.image_encoder.parameters())}')
