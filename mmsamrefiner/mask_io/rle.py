# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""COCO run-length encoding of (N, H, W) bool masks, JSON-ready."""
from typing import List, Sequence

import numpy as np


def encode_rle(masks: np.ndarray) -> List[dict]:
    """(N, H, W) bool masks -> N COCO RLEs with ``counts`` as str (JSON-ready)."""
    from pycocotools import mask as mask_utils  # where RLEs are coded, not at import
    if masks.ndim != 3:
        raise ValueError(f'masks must be (N, H, W), got shape {masks.shape}')
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle['counts'] = rle['counts'].decode('ascii')
    return rles


def decode_rle(rles: Sequence[dict], height: int, width: int) -> np.ndarray:
    """COCO RLEs -> (N, H, W) bool masks (N = 0 gives an empty (0, H, W) array)."""
    if len(rles) == 0:
        return np.zeros((0, height, width), bool)
    rles = [dict(size=r['size'], counts=r['counts'].encode('ascii')
                 if isinstance(r['counts'], str) else r['counts']) for r in rles]
    from pycocotools import mask as mask_utils
    return mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)
