# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The content-keyed array cache's compact entries (refined masks, embeddings)."""
import os

import numpy as np
import pytest

from mmsamrefiner.synthetic.scenes import make_scene
from mmsamrefiner.utils.atomic import atomic_write_npz
from mmsamrefiner.utils.mask_cache import MaskCache


def test_compressed_mask_entry_round_trips_exactly_and_is_much_smaller(tmp_path):
    cache = MaskCache(str(tmp_path))
    masks = make_scene(seed=0, height=288, width=384, num_objects=4).masks.astype(bool)
    assert masks.shape == (4, 288, 384)
    cache.put('k', refined=masks)
    got = cache.get('k')['refined']
    assert got.dtype == bool and got.shape == masks.shape
    np.testing.assert_array_equal(got, masks)
    # raw: 1 byte a pixel (442,368 bytes); bit-packed and deflated: a few KB
    assert os.path.getsize(cache.path('k')) < masks.nbytes / 50


@pytest.mark.parametrize('array', [
    np.random.default_rng(0).random((3, 37, 41)) < 0.5,  # not a multiple of 8 pixels
    np.zeros((0, 12, 9), bool),  # no masks
    np.random.default_rng(1).integers(0, 6, (37, 41)).astype(np.uint8),  # a label map
    np.random.default_rng(2).integers(0, 300, (5, 7)).astype(np.int32),
    np.random.default_rng(3).standard_normal((1, 4, 5, 5)).astype(np.float32),  # embedding
])
def test_every_array_kind_round_trips_exactly(tmp_path, array):
    cache = MaskCache(str(tmp_path))
    cache.put('k', value=array, size=np.array([3, 4]))
    entry = cache.get('k')
    assert sorted(entry) == ['size', 'value']
    assert entry['value'].dtype == array.dtype and entry['value'].shape == array.shape
    np.testing.assert_array_equal(entry['value'], array)
    np.testing.assert_array_equal(entry['size'], [3, 4])


def test_an_npz_file_without_the_format_version_is_a_miss(tmp_path):
    cache = MaskCache(str(tmp_path))
    masks = np.random.default_rng(0).random((2, 10, 13)) < 0.5
    atomic_write_npz(cache.path('plain'), refined=masks)  # not written by put
    assert cache.get('plain') is None
    cache.put('plain', refined=masks)  # the next put replaces it
    np.testing.assert_array_equal(cache.get('plain')['refined'], masks)


def test_a_damaged_packed_entry_is_a_miss(tmp_path):
    from mmsamrefiner.utils.mask_cache import decode_entry, encode_entry
    cache = MaskCache(str(tmp_path))
    cache.put('k', refined=np.ones((2, 8, 8), bool))
    with np.load(cache.path('k')) as data:
        entry = {name: data[name] for name in data.files}
    entry['refined'] = entry['refined'][:-1]  # a byte short
    with pytest.raises(ValueError, match='does not hold'):
        decode_entry(entry)
    with pytest.raises(ValueError, match='no format version'):
        decode_entry({'refined': np.ones((2, 8, 8), bool)})
    with pytest.raises(ValueError, match='unknown mask cache entry format 1'):
        decode_entry(dict(entry, __mask_cache_format__=np.array(1)))
    with pytest.raises(ValueError, match='reserved'):
        encode_entry(__mask_cache_format__=np.zeros(1))
