# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Reading back the pictures the mm visualization hooks save, panel by panel."""
import cv2
import numpy as np

from mmsamrefiner.visualization import title_box
from mmsamrefiner.visualization.coarse_beside_refined import COARSE_TITLE, REFINED_TITLE


def read_rgb(path) -> np.ndarray:
    """A saved picture as (H, W, 3) RGB uint8 (the files are BGR)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f'no picture at {path}'
    return image[..., ::-1]


def panels(picture: np.ndarray, width: int) -> list:
    """A picture cut into panels ``width`` pixels wide, left to right."""
    assert picture.shape[1] % width == 0, (picture.shape, width)
    return [picture[:, x:x + width] for x in range(0, picture.shape[1], width)]


def title_pixels(size) -> np.ndarray:
    """(H, W) bool: the pixels a "coarse" or a "refined" title may cover on a
    panel of ``size`` (H, W)."""
    covered = np.zeros(size, bool)
    for title in (COARSE_TITLE, REFINED_TITLE):
        x0, y0, x1, y1 = title_box(size, title)
        covered[y0:y1, x0:x1] = True
    return covered
