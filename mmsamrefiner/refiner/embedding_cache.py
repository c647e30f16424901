# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Image embeddings computed once per image and reused (SAMRefiner++ training).

SAM's image encoder is frozen and dominates the cost, so each image is encoded
once: kept in memory (on the CPU, the ``max_items`` most recently used) and,
optionally, on disk under ``cache_dir`` through :class:`MaskCache` (atomic
``.npz`` entries, safe for several ranks).

A disk entry's key (:meth:`EmbeddingCache.key`, a
:mod:`mmsamrefiner.utils.digest` digest) covers the image file (absolute path,
size, modification time: :func:`~mmsamrefiner.utils.digest.file_stamp`) and
the encoder (``encoder_key``: architecture, a digest of its weights,
the encoder dtype), so a changed image or another SAM never reads a stale
embedding.
"""
import os.path as osp
from collections import OrderedDict
from typing import Callable, Optional

import numpy as np
import torch

from mmsamrefiner.utils.digest import digest_bytes, file_stamp, hasher, update_tensors
from mmsamrefiner.utils.mask_cache import MaskCache

from .backends import ImageEmbedding, backend_of


def encoder_key(sam: torch.nn.Module, encoder_dtype: Optional[str] = None) -> str:
    """A short digest naming an image encoder and how it is run: the family,
    the input size, the dtype, and every tensor's name, shape and (sampled)
    values, so a retrained encoder at the same path never reads the old
    embeddings (:func:`mmsamrefiner.utils.digest.update_tensors`)."""
    backend = backend_of(sam)
    digest = hasher(f'{backend.family}|{backend.encoder_size}|{encoder_dtype}')
    update_tensors(digest, backend.image_encoder.state_dict().items())
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Image embeddings by image file, in memory and optionally on disk.

    Args:
        encode: ``img_path -> ImageEmbedding`` (e.g. ``SAMRefiner.encode_image``).
        encoder_key: names the encoder (:func:`encoder_key`) in disk keys.
        cache_dir: folder for disk entries; None: memory only.
        in_memory: keep embeddings in memory (CPU).
        max_items: how many embeddings memory holds at most (64 by default):
            past that the least recently used one is dropped (a ViT-H embedding
            is about 4 MB, so 64 hold about a quarter of a GB per process);
            None: no bound (every image of the process's life stays in memory:
            a large dataset does not fit).
    """

    def __init__(self, encode: Callable[[str], ImageEmbedding], encoder_key: str,
                 cache_dir: Optional[str] = None, in_memory: bool = True,
                 max_items: Optional[int] = 64) -> None:
        if max_items is not None and max_items < 1:
            raise ValueError(f'max_items must be a positive number or None, got {max_items}')
        self.encode = encode
        self.encoder_key = encoder_key
        self.disk = MaskCache(cache_dir) if cache_dir else None
        self.in_memory = in_memory
        self.max_items = max_items
        #: key -> embedding on the CPU, least recently used first
        self.memory: 'OrderedDict[str, ImageEmbedding]' = OrderedDict()
        self.encoded = 0  # images this process ran through the encoder

    def key(self, img_path: str) -> str:
        """The key of ``img_path``'s embedding: a digest of :attr:`encoder_key`
        and the file's absolute path, size and modification time
        (:func:`~mmsamrefiner.utils.digest.file_stamp`; the file is not read).
        ``FileNotFoundError`` when there is no such file."""
        if not osp.isfile(img_path):
            raise FileNotFoundError(f'image {img_path!r} does not exist')
        return digest_bytes(f'{self.encoder_key}|{file_stamp(img_path, whole_path=True)}')

    def get(self, img_path: str, device: torch.device) -> ImageEmbedding:
        """The embedding of ``img_path`` on ``device`` (encoded on a miss)."""
        key = self.key(img_path)
        found = self.memory.get(key)
        if found is not None:
            self.memory.move_to_end(key)  # most recently used
        if found is None and self.disk is not None:
            entry = self.disk.get(key)
            if entry is not None:
                found = ImageEmbedding(
                    torch.from_numpy(entry['embedding']),
                    tuple(int(v) for v in entry['input_size']),
                    tuple(int(v) for v in entry['original_size']),
                    {k[len('feature_'):]: torch.from_numpy(v) for k, v in entry.items()
                     if k.startswith('feature_')})
        if found is None:
            found = self.encode(img_path)
            self.encoded += 1
            if self.disk is not None:
                features = {f'feature_{k}': v.detach().float().cpu().numpy()
                            for k, v in found.features.items()}
                self.disk.put(key, embedding=found.embedding.detach().float().cpu().numpy(),
                              input_size=np.array(found.input_size),
                              original_size=np.array(found.original_size), **features)
        if self.in_memory and key not in self.memory:
            self.memory[key] = found.to('cpu')
            while self.max_items is not None and len(self.memory) > self.max_items:
                self.memory.popitem(last=False)  # the least recently used
        return found.to(device)
