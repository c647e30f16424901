# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A SAM that costs nothing but has a real SAM's frames: the host's ceiling.

The speed benchmark (``tools/benchmark_speed.py --collection``) measures how
fast everything around SAM can go (reading, decoding, resizing, prompt
mining, selection, upscaling, writing) by running the refiner with
:class:`StandInSAM` in place of a SAM: the same sizes (encoder input,
embedding grid, low-res masks, read from a built model with :meth:`like`),
but no network.
"""
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor, nn

from mmsamrefiner.refiner.backends import Backend, ImageEmbedding, backend_of
from mmsamrefiner.refiner.sam import PIXEL_MEAN, PIXEL_STD


class ZeroImageEncoder(nn.Module):
    """(B, 3, S, S) pixels -> (B, C, h, w) zeros."""

    def __init__(self, channels: int, grid: Tuple[int, int]) -> None:
        super().__init__()
        self.channels = channels
        self.grid = tuple(grid)

    def forward(self, pixels: Tensor) -> Tensor:
        return pixels.new_zeros(len(pixels), self.channels, *self.grid)


class StandInIoUHead(nn.Module):
    """Where SAM's IoU head is (``layers[-1]``: the IoU adapter's slot); unused."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Identity()])


class StandInSAM(nn.Module, Backend):
    """A model and its own backend (:func:`backend_of` returns it) with
    SAM's frames and no network.

    * :meth:`encode_batch`: SAM's preprocessing of each image (longest side
      resized to the encoder input, normalised, padded to the square: the
      host's work), then a zero embedding per image instead of the encoder;
    * :meth:`decode`: the mask prompts' logits, (N, 1, h, w) in the low-res
      frame, as each of the M candidates, predicted IoUs 0: SAM "answers"
      with the prompt it was given, so the masks keep the coarse masks'
      size and the refiner's other stages do the work a trained SAM's
      answers would give them.  It needs the mask prompt (``use_mask``).

    The zero embedding gives the elastic box nothing to compare: keep
    ``elastic_margin=0`` (the default).

    Args:
        encoder_size: side of the square encoder input (pixels).
        embedding_size: (h, w) of the image embedding.
        low_res_size: (h, w) of the mask prompt and the low-res masks.
        channels: channels of the image embedding.
        candidates: candidates per mask (SAM: 3).
    """
    family = 'sam'
    upscale_through_encoder = True

    def __init__(self, encoder_size: int, embedding_size: Tuple[int, int],
                 low_res_size: Tuple[int, int], channels: int, candidates: int) -> None:
        nn.Module.__init__(self)
        self.sizes = (int(encoder_size), tuple(embedding_size), tuple(low_res_size))
        self.candidates = int(candidates)
        self.compiled_encoder = None
        self.zero_encoder = ZeroImageEncoder(channels, embedding_size)
        self.iou_prediction_head = StandInIoUHead()
        self.register_buffer('pixel_mean', torch.tensor(PIXEL_MEAN)[:, None, None], False)
        self.register_buffer('pixel_std', torch.tensor(PIXEL_STD)[:, None, None], False)

    @classmethod
    def like(cls, sam: nn.Module) -> 'StandInSAM':
        """A stand-in with the frames of ``sam``, a built SAM or HQ-SAM
        (its weights are not read: one built on the ``meta`` device does)."""
        backend = backend_of(sam)
        if backend.family not in ('sam', 'hq'):
            raise ValueError(f'a stand-in has the frames of SAM and HQ-SAM, not of family '
                             f'{backend.family!r}')
        return cls(backend.encoder_size, backend.embedding_size, backend.low_res_size,
                   channels=sam.prompt_encoder.embed_dim,
                   candidates=sam.mask_decoder.num_multimask_outputs)

    # -- Backend ----------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        return self

    @property
    def encoder_size(self) -> int:
        return self.sizes[0]

    @property
    def embedding_size(self) -> Tuple[int, int]:
        return self.sizes[1]

    @property
    def low_res_size(self) -> Tuple[int, int]:
        return self.sizes[2]

    @property
    def image_encoder(self) -> nn.Module:
        return self.zero_encoder

    @property
    def iou_head(self) -> nn.Module:
        return self.iou_prediction_head

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, rgb: np.ndarray) -> Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, S, S): resized (longest side S),
        normalised, zero-padded at the bottom and right."""
        resized = ResizeLongestSide(self.encoder_size).apply_image(rgb)
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)[None].float()
        pixels = (pixels - self.pixel_mean) / self.pixel_std
        height, width = pixels.shape[-2:]
        return F.pad(pixels, (0, self.encoder_size - width, 0, self.encoder_size - height))

    def encode_batch(self, rgbs: List[np.ndarray],
                     dtype: Optional[torch.dtype] = None) -> List[ImageEmbedding]:
        embeddings = self.run_encoder(torch.cat([self.preprocess(rgb) for rgb in rgbs]), dtype)
        return [ImageEmbedding(embeddings[i:i + 1].float(), self.input_size(rgb.shape[:2]),
                               tuple(rgb.shape[:2])) for i, rgb in enumerate(rgbs)]

    def decode(self, embedding, points, labels, boxes, mask_inputs):
        if mask_inputs is None:
            raise ValueError('the stand-in SAM answers with the mask prompt: keep use_mask=True')
        logits = mask_inputs.expand(-1, self.candidates, -1, -1)
        return logits, mask_inputs.new_zeros(len(mask_inputs), self.candidates)
