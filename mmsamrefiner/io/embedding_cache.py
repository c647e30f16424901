# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Image embeddings computed once per image and reused (SAMRefiner++ training).

SAM's image encoder is frozen and dominates the cost, so each image is encoded
once: kept in memory (on the CPU) and, optionally, on disk under ``cache_dir``
through :class:`MaskCache` (atomic ``.npz`` entries, safe for several ranks).

A disk entry's key covers the image file (absolute path, size, modification
time) and the encoder (``encoder_key``: architecture, a digest of its weights,
the encoder dtype), so a changed image or another SAM never reads a stale
embedding.
"""
import hashlib
import os
import os.path as osp
from typing import Callable, Dict, Optional

import numpy as np
import torch

from mmsamrefiner.refiner.refiner import ImageEmbedding
from .mask_cache import MaskCache


def encoder_key(sam: torch.nn.Module, encoder_dtype: Optional[str] = None) -> str:
    """A short digest naming a SAM image encoder and how it is run."""
    digest = hashlib.sha1(str(encoder_dtype).encode('ascii'))
    for name, tensor in sorted(sam.image_encoder.state_dict().items()):
        if name.endswith('patch_embed.proj.weight') or name.endswith('neck.3.weight'):
            digest.update(name.encode('ascii'))
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    digest.update(str(sam.image_encoder.img_size).encode('ascii'))
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Image embeddings by image file, in memory and optionally on disk.

    Args:
        encode: ``img_path -> ImageEmbedding`` (e.g. ``SAMRefiner.encode_image``).
        encoder_key: names the encoder (:func:`encoder_key`) in disk keys.
        cache_dir: folder for disk entries; None: memory only.
        in_memory: keep embeddings in memory (CPU) for the process's life.
    """

    def __init__(self, encode: Callable[[str], ImageEmbedding], encoder_key: str,
                 cache_dir: Optional[str] = None, in_memory: bool = True) -> None:
        self.encode = encode
        self.encoder_key = encoder_key
        self.disk = MaskCache(cache_dir) if cache_dir else None
        self.in_memory = in_memory
        self.memory: Dict[str, ImageEmbedding] = {}
        self.encoded = 0  # images this process ran through the encoder

    def key(self, img_path: str) -> str:
        path = osp.abspath(img_path)
        stat = os.stat(path)
        text = f'{self.encoder_key}|{path}|{stat.st_size}|{stat.st_mtime_ns}'
        return hashlib.sha1(text.encode('utf-8')).hexdigest()

    def get(self, img_path: str, device: torch.device) -> ImageEmbedding:
        """The embedding of ``img_path`` on ``device`` (encoded on a miss)."""
        key = self.key(img_path)
        found = self.memory.get(key)
        if found is None and self.disk is not None:
            entry = self.disk.get(key)
            if entry is not None:
                found = ImageEmbedding(torch.from_numpy(entry['embedding']),
                                       tuple(int(v) for v in entry['input_size']),
                                       tuple(int(v) for v in entry['original_size']))
        if found is None:
            found = self.encode(img_path)
            self.encoded += 1
            if self.disk is not None:
                self.disk.put(key, embedding=found.embedding.float().cpu().numpy(),
                              input_size=np.array(found.input_size),
                              original_size=np.array(found.original_size))
        if self.in_memory and key not in self.memory:
            self.memory[key] = ImageEmbedding(found.embedding.detach().cpu(),
                                              found.input_size, found.original_size)
        return ImageEmbedding(found.embedding.to(device), found.input_size,
                              found.original_size)
