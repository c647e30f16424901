# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Mask IoU and boundary IoU on hand-made masks with hand-computed answers."""
import numpy as np

from mmsamrefiner.evaluation import boundary_iou, mask_boundary, mask_iou


def square(size, y1, y2, x1, x2):
    m = np.zeros((size, size), bool)
    m[y1:y2, x1:x2] = True
    return m


def test_mask_iou_by_hand():
    a = square(10, 0, 4, 0, 4)  # 16 px
    b = square(10, 2, 6, 2, 6)  # 16 px, overlap 4
    empty = np.zeros((10, 10), bool)
    iou = mask_iou(np.stack([a, a, empty]), np.stack([b, a, empty]))
    np.testing.assert_allclose(iou, [4 / 28, 1.0, 1.0])


def test_boundary_band_width_follows_the_diagonal():
    # 100x100 image: diagonal 141.4, ratio 0.02 -> d = 3 px
    m = square(100, 20, 80, 20, 80)  # 60x60
    band = mask_boundary(m[None])[0]
    assert band.sum() == 60 * 60 - 54 * 54
    assert band[20, 50] and band[22, 50] and not band[23, 50]


def test_boundary_iou_by_hand():
    # two 60x60 squares offset by 1 column; bands are 3 px wide
    a = square(100, 20, 80, 20, 80)
    b = square(100, 20, 80, 21, 81)
    band_a, band_b = mask_boundary(np.stack([a, b]))
    expected = (band_a & band_b).sum() / (band_a | band_b).sum()
    np.testing.assert_allclose(boundary_iou(a[None], b[None]), [expected])
    assert boundary_iou(a[None], b[None])[0] < mask_iou(a[None], b[None])[0]
    np.testing.assert_allclose(boundary_iou(a[None], a[None]), [1.0])
