# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Seeded scenes of textured shapes on a cluttered background.

Everything is generated from a seed, so demos and tests need no data files.
"""
from dataclasses import dataclass
from typing import Tuple

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
    _draw_shape(rng, kind, canvas, cx, cy, size)
    return canvas.astype(bool)


def _draw_shape(rng: np.random.Generator, kind: int, canvas: np.ndarray, cx: int,
                cy: int, size: float) -> None:
    """Draw a shape of ``kind`` centred at (``cx``, ``cy``), about ``size``
    pixels in radius (a thin handle reaches ``1.8 * size``), into ``canvas``
    (uint8, set to 1)."""
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


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float image: a colour, a gradient, noise and clutter lines."""
    yy, xx = np.mgrid[:height, :width]
    base = rng.uniform(40, 120, 3)
    gradient = (xx / width)[..., None] * rng.uniform(-30, 30, 3)
    image = base + gradient + rng.normal(0, 12, (height, width, 3))
    for _ in range(6):  # background clutter
        colour = rng.uniform(30, 140, 3)
        cv2.line(image, tuple(int(v) for v in rng.integers(0, width, 2)),
                 tuple(int(v) for v in rng.integers(0, height, 2)), colour.tolist(),
                 int(rng.integers(1, 4)))
    return image


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float texture of one object: a colour with stripes and noise."""
    yy, xx = np.mgrid[:height, :width]
    colour = rng.uniform(120, 255, 3) * (rng.uniform(0, 1, 3) > 0.3)
    stripes = np.sin((xx * rng.uniform(0.1, 0.4) + yy * rng.uniform(0.1, 0.4)))
    return colour + 20 * stripes[..., None] + rng.normal(0, 8, (height, width, 3))


def make_scene(seed: int = 0, height: int = 192, width: int = 240,
               num_objects: int = 3) -> Scene:
    """A scene of ``num_objects`` textured shapes; see :class:`Scene`."""
    rng = np.random.default_rng(seed)
    image = _background(rng, height, width)
    visible = np.zeros((0, height, width), bool)
    labels = []
    for _ in range(num_objects):
        kind = int(rng.integers(1, len(SHAPE_KINDS) + 1))
        shape = _shape_mask(rng, kind, height, width)
        texture = _texture(rng, height, width)
        image[shape] = texture[shape]
        visible = np.concatenate([visible & ~shape, shape[None]])
        labels.append(kind)
    keep = visible.reshape(len(visible), -1).any(1)
    return Scene(np.clip(image, 0, 255).astype(np.uint8), visible[keep],
                 np.asarray(labels, np.int64)[keep])


#: Layouts of :func:`make_class_scene`.
LAYOUTS = ('apart', 'touching', 'occluded')


def _shape_patch(rng: np.random.Generator, kind: int, size: float) -> np.ndarray:
    """A shape of ``kind`` drawn at the centre of a square bool patch."""
    half = int(np.ceil(1.9 * size)) + 2
    canvas = np.zeros((2 * half + 1,) * 2, np.uint8)
    _draw_shape(rng, kind, canvas, half, half, size)
    return canvas.astype(bool)


def _paste(patch: np.ndarray, cx: int, cy: int, height: int, width: int) -> np.ndarray:
    """(H, W) bool: ``patch`` with its centre at (``cx``, ``cy``), clipped."""
    half = len(patch) // 2
    out = np.zeros((height, width), bool)
    y1, x1 = max(cy - half, 0), max(cx - half, 0)
    y2, x2 = min(cy + half + 1, height), min(cx + half + 1, width)
    if y1 < y2 and x1 < x2:
        out[y1:y2, x1:x2] = patch[y1 - cy + half:y2 - cy + half, x1 - cx + half:x2 - cx + half]
    return out


def _centre_range(patch: np.ndarray, height: int, width: int, margin: int = 2):
    """The centres (x range, y range, inclusive) that keep the patch's shape
    ``margin`` pixels inside the image."""
    half = len(patch) // 2
    ys, xs = np.nonzero(patch)
    return ((margin + half - xs.min(), width - 1 - margin + half - xs.max()),
            (margin + half - ys.min(), height - 1 - margin + half - ys.max()))


def _place_apart(rng, patch, taken, gap: int, tries: int = 200):
    """A centre where the patch's shape stays ``gap`` pixels from ``taken``
    (an (H, W) bool), or None."""
    height, width = taken.shape
    (x1, x2), (y1, y2) = _centre_range(patch, height, width)
    if x1 > x2 or y1 > y2:
        return None
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1,) * 2)
    blocked = cv2.dilate(taken.astype(np.uint8), kernel).astype(bool)
    for _ in range(tries):
        cx, cy = int(rng.integers(x1, x2 + 1)), int(rng.integers(y1, y2 + 1))
        if not (_paste(patch, cx, cy, height, width) & blocked).any():
            return cx, cy
    return None


def _place_touching(rng, patch, taken, centres, overlap: int, tries: int = 50):
    """A centre where the patch's shape, moved towards a placed object from
    outside, first meets ``taken``, then ``overlap`` pixels further; or None."""
    height, width = taken.shape
    (x1, x2), (y1, y2) = _centre_range(patch, height, width)
    reach = len(patch) + max(height, width) // 4
    for _ in range(tries):
        ax, ay = centres[int(rng.integers(len(centres)))]
        angle = rng.uniform(0, 2 * np.pi)
        for step in range(reach, -1, -1):
            cx = int(round(ax + step * np.cos(angle)))
            cy = int(round(ay + step * np.sin(angle)))
            if _paste(patch, cx, cy, height, width)[taken].any():
                break
        else:
            continue
        cx = int(round(ax + (step - overlap) * np.cos(angle)))
        cy = int(round(ay + (step - overlap) * np.sin(angle)))
        if x1 <= cx <= x2 and y1 <= cy <= y2:
            return cx, cy
    return None


def make_class_scene(seed: int = 0, height: int = 192, width: int = 240,
                     num_objects: int = 2, layout: str = 'apart') -> Scene:
    """A scene of ``num_objects`` textured shapes of one class: the cases of
    a semantic label map (:data:`LAYOUTS`).

    * ``'apart'``: no two objects come within 4 pixels of each other;
    * ``'touching'``: each object after the first is moved towards an object
      placed before it until it meets it, then 2 pixels further (it occludes
      it), so the objects together are one 8-connected region;
    * ``'occluded'``: objects placed apart, then each is crossed through its
      deepest pixel (farthest from its outline) by a bar of clutter (4-8
      pixels wide, across the image) that is no object, so its visible mask
      is in pieces.

    Shapes (:data:`SHAPE_KINDS`) are 0.10-0.18 of the shorter side in radius,
    textured as in :func:`make_scene`, on its background; a shape that finds
    no place is drawn again smaller.

    Returns:
        :class:`Scene`: ``masks`` (N, H, W) bool, the visible part of each
        object; ``labels`` the shape kinds.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    rng = np.random.default_rng(seed)
    image = _background(rng, height, width)
    taken = np.zeros((height, width), bool)
    shapes, centres, labels = [], [], []
    for _ in range(num_objects):
        kind = int(rng.integers(1, len(SHAPE_KINDS) + 1))
        size = rng.uniform(0.10, 0.18) * min(height, width)
        for _ in range(20):
            patch = _shape_patch(rng, kind, size)
            if centres and layout == 'touching':
                centre = _place_touching(rng, patch, taken, centres, overlap=2)
            else:
                centre = _place_apart(rng, patch, taken, gap=4)
            if centre is not None:
                break
            size *= 0.85
        else:
            raise RuntimeError(f'no room for {num_objects} objects in {height}x{width}')
        shape = _paste(patch, *centre, height, width)
        texture = _texture(rng, height, width)
        image[shape] = texture[shape]
        shapes.append(shape)
        centres.append(centre)
        labels.append(kind)
        taken |= shape
    visible = np.stack(shapes)
    for index in range(len(visible) - 1):  # later objects occlude earlier ones
        visible[index] &= ~visible[index + 1:].any(0)
    if layout == 'occluded':
        for shape in shapes:  # through the pixel deepest in the shape
            depth = cv2.distanceTransform(shape.astype(np.uint8), cv2.DIST_L2, 5)
            cy, cx = np.unravel_index(int(depth.argmax()), depth.shape)
            angle = rng.uniform(0, np.pi)
            reach = height + width
            ends = [(int(cx + sign * reach * np.cos(angle)), int(cy + sign * reach * np.sin(angle)))
                    for sign in (-1, 1)]
            bar = np.zeros((height, width), np.uint8)
            cv2.line(bar, ends[0], ends[1], 1, int(rng.integers(4, 9)))
            bar = bar.astype(bool)
            colour = rng.uniform(30, 140, 3)
            image[bar] = colour + rng.normal(0, 12, (int(bar.sum()), 3))
            visible &= ~bar
    keep = visible.reshape(len(visible), -1).any(1)
    return Scene(np.clip(image, 0, 255).astype(np.uint8), visible[keep],
                 np.asarray(labels, np.int64)[keep])


def make_crowded_scene(seed: int = 0, height: int = 480, width: int = 640,
                       num_objects: Tuple[int, int] = (5, 20),
                       radius: Tuple[float, float] = (0.02, 0.3)) -> Scene:
    """A COCO-like scene: between ``num_objects[0]`` and ``num_objects[1]``
    textured shapes (:data:`SHAPE_KINDS`) of mixed sizes, drawn over each
    other (speed benchmarks and pipelines that want many masks an image).

    Sizes are log-uniform: a shape's radius is a fraction of the shorter side
    drawn between ``radius[0]`` and ``radius[1]``, so small objects are as
    common as large ones on a log scale (at 480x640: radii of 10 to 144
    pixels).  Later shapes occlude earlier ones; shapes left with no visible
    pixel are dropped (rare).

    Returns:
        :class:`Scene`, as :func:`make_scene`.
    """
    rng = np.random.default_rng(seed)
    image = _background(rng, height, width)
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    short = min(height, width)
    visible = np.zeros((count, height, width), bool)
    labels = []
    for index in range(count):
        kind = int(rng.integers(1, len(SHAPE_KINDS) + 1))
        size = float(np.exp(rng.uniform(np.log(radius[0]), np.log(radius[1])))) * short
        cx = int(rng.uniform(size, width - size))
        cy = int(rng.uniform(size, height - size))
        canvas = np.zeros((height, width), np.uint8)
        _draw_shape(rng, kind, canvas, cx, cy, size)
        x, y, w, h = cv2.boundingRect(canvas)
        shape = canvas.astype(bool)
        box = shape[y:y + h, x:x + w]
        image[y:y + h, x:x + w][box] = _texture(rng, h, w)[box]
        visible[:index] &= ~shape
        visible[index] = shape
        labels.append(kind)
    keep = visible.reshape(count, -1).any(1)
    return Scene(np.clip(image, 0, 255).astype(np.uint8), visible[keep],
                 np.asarray(labels, np.int64)[keep])
