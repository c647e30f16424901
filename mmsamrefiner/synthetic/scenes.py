# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Seeded scenes of textured shapes on a cluttered background.

Everything is generated from a seed, so demos and tests need no data files.
"""
from dataclasses import dataclass

import cv2
import numpy as np

#: Object kinds; a scene's label ``k`` is ``SHAPE_KINDS[k - 1]``.
SHAPE_KINDS = ('ellipse', 'polygon', 'ring', 'c_shape', 'thin_handle')


@dataclass
class Scene:
    """One generated image with its objects.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        masks: (N, H, W) bool, the visible part of each object (later objects
            occlude earlier ones).
        labels: (N,) int64 class ids, indices into :data:`SHAPE_KINDS` plus 1.
    """
    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray


def _shape_mask(rng: np.random.Generator, kind: int, height: int,
                width: int) -> np.ndarray:
    canvas = np.zeros((height, width), np.uint8)
    size = rng.uniform(0.12, 0.25) * min(height, width)
    cx = int(rng.uniform(size, width - size))
    cy = int(rng.uniform(size, height - size))
    if kind == 1:  # ellipse
        axes = (int(size), int(size * rng.uniform(0.5, 1.0)))
        cv2.ellipse(canvas, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == 2:  # polygon
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
        radii = size * rng.uniform(0.6, 1.0, len(angles))
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(canvas, [pts.astype(np.int32)], 1)
    elif kind == 5:  # a blob with a thin handle
        cv2.ellipse(canvas, (cx, cy), (int(size * 0.7), int(size * 0.5)),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        angle = rng.uniform(0, 2 * np.pi)
        end = (int(cx + 1.8 * size * np.cos(angle)), int(cy + 1.8 * size * np.sin(angle)))
        cv2.line(canvas, (cx, cy), end, 1, int(rng.integers(2, 4)))
    else:  # ring (3) or C-shape (4)
        thickness = max(2, int(size * rng.uniform(0.25, 0.4)))
        start = float(rng.uniform(0, 360)) if kind == 4 else 0.0
        sweep = 270.0 if kind == 4 else 360.0
        cv2.ellipse(canvas, (cx, cy), (int(size), int(size)), 0, start,
                    start + sweep, 1, thickness)
    return canvas.astype(bool)


def make_scene(seed: int = 0, height: int = 192, width: int = 240,
               num_objects: int = 3) -> Scene:
    """A scene of ``num_objects`` textured shapes; see :class:`Scene`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = rng.uniform(40, 120, 3)
    gradient = (xx / width)[..., None] * rng.uniform(-30, 30, 3)
    image = base + gradient + rng.normal(0, 12, (height, width, 3))
    for _ in range(6):  # background clutter
        colour = rng.uniform(30, 140, 3)
        cv2.line(image, tuple(int(v) for v in rng.integers(0, width, 2)),
                 tuple(int(v) for v in rng.integers(0, height, 2)), colour.tolist(),
                 int(rng.integers(1, 4)))
    visible = np.zeros((0, height, width), bool)
    labels = []
    for _ in range(num_objects):
        kind = int(rng.integers(1, len(SHAPE_KINDS) + 1))
        shape = _shape_mask(rng, kind, height, width)
        colour = rng.uniform(120, 255, 3) * (rng.uniform(0, 1, 3) > 0.3)
        stripes = np.sin((xx * rng.uniform(0.1, 0.4) + yy * rng.uniform(0.1, 0.4)))
        texture = colour + 20 * stripes[..., None] + rng.normal(0, 8, (height, width, 3))
        image[shape] = texture[shape]
        visible = np.concatenate([visible & ~shape, shape[None]])
        labels.append(kind)
    keep = visible.reshape(len(visible), -1).any(1)
    return Scene(np.clip(image, 0, 255).astype(np.uint8), visible[keep],
                 np.asarray(labels, np.int64)[keep])
