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
    # two 60x60 squares offset by 1 column; bands are 3 px wide (d = 3):
    # A = rows 20:80 x cols 20:80, inner Ai = 23:77 x 23:77 (band 3600 - 2916 = 684)
    # B = rows 20:80 x cols 21:81, inner Bi = 23:77 x 24:78 (band 684)
    # bands' intersection = |A&B| - |A&Bi| - |Ai&B| + |Ai&Bi|
    #                     = 60*59 - 54*54 - 54*54 + 54*53 = 570
    a = square(100, 20, 80, 20, 80)
    b = square(100, 20, 80, 21, 81)
    np.testing.assert_allclose(boundary_iou(a[None], b[None]), [570 / (684 + 684 - 570)])
    np.testing.assert_allclose(mask_iou(a[None], b[None]), [3540 / (3600 + 3600 - 3540)])
    np.testing.assert_allclose(boundary_iou(a[None], a[None]), [1.0])
