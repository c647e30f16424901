# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Checking and converting what users pass to the refiner.

The one place where images become RGB uint8 arrays and masks become bool
tensors; every error names the bad value and what was expected.
"""
import os
from typing import Union

import cv2
import numpy as np
import torch
from PIL import Image, ImageFile
from torch import Tensor

from mmsamrefiner.utils.background import overridden

ImageLike = Union[str, os.PathLike, np.ndarray]
MaskLike = Union[np.ndarray, Tensor]


CHANNEL_ORDERS = ('rgb', 'bgr')


def check_encode_batch(value) -> int:
    """``value``, the number of images per image-encoder call, if it is an
    int >= 1 (1: one by one; more is faster on GPUs, the masks equal the
    one-by-one ones up to float rounding): one rule for ``tools/refine.py``
    (:func:`mmsamrefiner.apis.refine_collection`) and
    :class:`~mmsamrefiner.engine.SAMRefinerHook`.

    Raises:
        ValueError: anything else (a bool, 0, a negative number, a float, a
            string, None).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('encode_batch is the number of images per image-encoder call, an int '
                         f'>= 1 (1: one by one), got {value!r}')
    return value


def check_channel_order(value: str) -> str:
    """``value`` if it is ``'rgb'`` or ``'bgr'`` (the order of an image
    array's channels; MM pipelines carry BGR), else ``ValueError``."""
    if not isinstance(value, str) or value not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be 'rgb' or 'bgr' (the order of the image "
                         f"array's channels; MM pipelines carry 'bgr'), got {value!r}")
    return value


def check_complete_jpeg(path: str) -> None:
    """Raise ``ValueError`` if ``path`` is a JPEG whose data ends early.

    libjpeg (behind ``cv2.imread``) only warns about a truncated JPEG and fills
    the missing rows grey, which would be refined as if whole.  Cheap: a file
    that ends with the end-of-image marker passes on its last two bytes; only
    one that does not (truncated, or with trailing bytes) is decoded, at 1/8
    scale, by PIL with truncated images refused.  Other formats pass (OpenCV
    refuses truncated PNGs itself).
    """
    with open(path, 'rb') as f:
        if f.read(3) != b'\xff\xd8\xff':
            return
        f.seek(-2, os.SEEK_END)
        if f.read(2) == b'\xff\xd9':
            return
    try:
        with overridden(ImageFile, 'LOAD_TRUNCATED_IMAGES', False), Image.open(path) as image:
            image.draft('RGB', (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except Exception as error:  # noqa: BLE001
        # PIL reports damaged data with the error of the plugin step that hit
        # it (OSError, SyntaxError, struct.error, ValueError, ...); any failure
        # to decode this file means it is damaged.
        raise ValueError(f'image {path!r} is a truncated or damaged JPEG ({error}); its '
                         'missing part would be decoded as grey: copy or download it '
                         'again') from error


def load_rgb_image(image: ImageLike, channel_order: str = 'rgb') -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB array.

    Args:
        image: a path, or an (H, W, 3) uint8 array (an (H, W) grey array is
            repeated to three channels).  A truncated JPEG is refused
            (:func:`check_complete_jpeg`).
        channel_order: ``'rgb'`` or ``'bgr'``: the order of an array's channels
            (MM pipelines carry BGR).  Ignored for paths, which are decoded to RGB.
    """
    check_channel_order(channel_order)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'image {path!r} does not exist')
        check_complete_jpeg(path)
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f'image {path!r} cannot be read as an image')
        return np.ascontiguousarray(bgr[..., ::-1])
    if not isinstance(image, np.ndarray):
        raise TypeError('image must be a path or an (H, W, 3) uint8 ndarray, '
                        f'got {type(image).__name__}')
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must have shape (H, W, 3), got {image.shape}')
    if image.dtype != np.uint8:
        raise ValueError(f'image must be uint8, got {image.dtype}')
    if channel_order == 'bgr':
        image = image[..., ::-1]
    return np.ascontiguousarray(image)


def to_bool_masks(masks: MaskLike, name: str = 'masks') -> Tensor:
    """Return (N, H, W) bool masks as a tensor (on the input's device).

    Accepts bool arrays and numbers valued {0, 1} or {0, 255}.
    """
    if isinstance(masks, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(masks))
    elif isinstance(masks, Tensor):
        tensor = masks.detach()
    else:
        raise TypeError(f'{name} must be an (N, H, W) ndarray or tensor, '
                        f'got {type(masks).__name__}')
    if tensor.ndim != 3:
        raise ValueError(f'{name} must have shape (N, H, W), got '
                         f'{tuple(tensor.shape)} (add a leading axis for one mask)')
    if tensor.dtype == torch.bool:
        return tensor
    if tensor.is_complex():
        raise ValueError(f'{name} must be binary, got dtype {tensor.dtype}')
    is_zero = tensor == 0
    if bool((is_zero | (tensor == 1)).all()):
        return ~is_zero
    if bool((is_zero | (tensor == 255)).all()):
        return ~is_zero
    values = torch.unique(tensor)[:8].tolist()
    raise ValueError(f'{name} must be binary (bool, 0/1 or 0/255), found values '
                     f'{values}')


def check_same_size(masks_hw, image_hw, what: str = 'masks') -> None:
    """Raise if masks and image differ in (H, W); the message names both."""
    if tuple(masks_hw) != tuple(image_hw):
        raise ValueError(f'{what} have size (H, W)={tuple(masks_hw)} but the image '
                         f'has {tuple(image_hw)}; they must match')
