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


def put_title(image: np.ndarray, title: str) -> np.ndarray:
    """A copy of an (H, W, 3) uint8 image (any channel order: the title is
    white on black) with ``title`` in its top-left corner, its letters about
    1/25 of the image's shorter side high (at least 8 pixels).

    Only the box :func:`title_box` gives is changed.
    """
    scale, thickness = _title_font(image.shape[:2])
    x0, y0, x1, y1 = title_box(image.shape[:2], title)
    canvas = image.copy()
    canvas[y0:y1, x0:x1] = 0
    (_, text_height), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, text_height // 3)
    text = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)  # drawn apart so it never leaves the box
    cv2.putText(text, title, (pad, pad + text_height), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    canvas[y0:y1, x0:x1] = text
    return canvas


def title_box(size, title: str):
    """The (x0, y0, x1, y1) pixel box, xyxy with exclusive ends, that
    :func:`put_title` paints on an image of ``size`` (H, W)."""
    scale, thickness = _title_font(size)
    (text_width, text_height), baseline = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX,
                                                          scale, thickness)
    pad = max(2, text_height // 3)
    height, width = size
    return (0, 0, min(width, text_width + 2 * pad),
            min(height, text_height + baseline + 2 * pad))


def _title_font(size):
    """OpenCV font scale and thickness for a title on an image of ``size``."""
    scale = max(0.35, min(size) / 550)
    return scale, max(1, round(scale * 1.5))


def side_by_side(panels: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels of equal height in a row, separated by white gaps."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    row = []
    for panel in panels:
        row += [panel, spacer]
    return np.concatenate(row[:-1], axis=1)
