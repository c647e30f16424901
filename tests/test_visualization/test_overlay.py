# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Titles on panels."""
import numpy as np
import pytest

from mmsamrefiner.visualization import put_title, title_box


@pytest.mark.parametrize('size', [(40, 60), (96, 128), (480, 640), (1200, 900)])
def test_a_title_changes_only_its_box_and_grows_with_the_image(size):
    image = np.random.default_rng(0).integers(0, 256, size + (3, ), dtype=np.uint8)
    titled = put_title(image, 'refined')
    x0, y0, x1, y1 = title_box(size, 'refined')
    assert (x0, y0) == (0, 0) and 0 < x1 <= size[1] and 0 < y1 <= size[0]
    outside = np.ones(size, bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(titled[outside], image[outside])
    box = titled[y0:y1, x0:x1]
    assert (box.min(2) > 200).any() and (box == 0).all(2).mean() > 0.5  # white on black
    assert titled.dtype == np.uint8 and titled.shape == image.shape
    np.testing.assert_array_equal(put_title(image, 'refined'), titled)  # image untouched


def test_titles_are_about_a_twenty_fifth_of_the_shorter_side_high():
    sizes = [(96, 128), (480, 640), (1000, 1500)]
    heights = {size: title_box(size, 'coarse')[3] for size in sizes}
    assert heights[(96, 128)] < heights[(480, 640)] < heights[(1000, 1500)]
    assert 1000 / 25 <= heights[(1000, 1500)] <= 1000 / 8
