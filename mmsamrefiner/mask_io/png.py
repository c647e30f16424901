# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The one PNG encoder of the package's outputs (the label maps and binary
masks of :mod:`.refined_masks`)."""
import io
from typing import Optional

import numpy as np
from PIL import Image


def encode_png(image: np.ndarray, palette: Optional[np.ndarray] = None) -> bytes:
    """PNG bytes of an (H, W) integer array or an (H, W, 3) BGR uint8 image.

    (H, W): palette mode when ``palette`` is given ((K, 3) uint8 RGB, values
    0..255), else grey, 8 bit when every value fits 8 bits (0..255), 16 bit otherwise
    (values 0..65535).
    """
    if image.ndim == 3 and image.shape[2] == 3 and palette is None:
        if image.dtype != np.uint8:
            raise ValueError(f'a colour PNG needs uint8 pixels, got {image.dtype}')
        pil = Image.fromarray(np.ascontiguousarray(image[..., ::-1]), mode='RGB')
    elif image.ndim == 2:
        if image.size and (image.min() < 0 or
                           image.max() > (255 if palette is not None else 65535)):
            raise ValueError(f'label values {image.min()}..{image.max()} do not fit a '
                             f'{"palette" if palette is not None else "grey"} PNG')
        if palette is not None:
            pil = Image.fromarray(image.astype(np.uint8), mode='P')
            pil.putpalette(np.asarray(palette, np.uint8).reshape(-1).tolist())
        elif not image.size or image.max() < 256:
            pil = Image.fromarray(image.astype(np.uint8), mode='L')
        else:
            pil = Image.fromarray(image.astype(np.uint16))
    else:
        raise ValueError(f'cannot encode an array of shape {image.shape} as PNG')
    buffer = io.BytesIO()
    pil.save(buffer, format='PNG')
    return buffer.getvalue()

