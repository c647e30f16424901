# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask overlays drawn with OpenCV; images are RGB uint8 in and out."""
from typing import Sequence

import cv2
import numpy as np


def _palette(count: int) -> np.ndarray:
    hues = (np.arange(count) * 47) % 180
    hsv = np.stack([hues, np.full(count, 200), np.full(count, 255)], 1)
    return cv2.cvtColor(hsv[None].astype(np.uint8), cv2.COLOR_HSV2RGB)[0]


def draw_masks(image: np.ndarray, masks: np.ndarray, title: str = '',
               alpha: float = 0.45) -> np.ndarray:
    """Blend (N, H, W) bool masks onto an (H, W, 3) RGB image, with contours."""
    canvas = image.astype(np.float32)
    colours = _palette(len(masks)).astype(np.float32)
    for mask, colour in zip(masks, colours):
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * colour
    canvas = canvas.astype(np.uint8)
    for mask, colour in zip(masks, colours):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, colour.tolist(), 1)
    if title:
        cv2.putText(canvas, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def side_by_side(panels: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels of equal height in a row, separated by white gaps."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    row = []
    for panel in panels:
        row += [panel, spacer]
    return np.concatenate(row[:-1], axis=1)
