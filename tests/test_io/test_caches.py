# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The refined-mask cache's compact entries and the embedding cache's bound."""
import os

import numpy as np
import pytest
import torch

from mmsamrefiner.io import MaskCache, atomic_write_npz
from mmsamrefiner.io.embedding_cache import EmbeddingCache
from mmsamrefiner.refiner.backends import ImageEmbedding
from mmsamrefiner.synthetic.scenes import make_scene


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


def test_entries_of_the_earlier_uncompressed_format_are_still_read(tmp_path):
    cache = MaskCache(str(tmp_path))
    masks = np.random.default_rng(0).random((2, 10, 13)) < 0.5
    atomic_write_npz(cache.path('old'), refined=masks)  # how entries used to be written
    np.testing.assert_array_equal(cache.get('old')['refined'], masks)


def test_a_damaged_packed_entry_is_a_miss(tmp_path):
    from mmsamrefiner.io.mask_cache import decode_entry, encode_entry
    cache = MaskCache(str(tmp_path))
    cache.put('k', refined=np.ones((2, 8, 8), bool))
    with np.load(cache.path('k')) as data:
        entry = {name: data[name] for name in data.files}
    entry['refined'] = entry['refined'][:-1]  # a byte short
    with pytest.raises(ValueError, match='does not hold'):
        decode_entry(entry)
    with pytest.raises(ValueError, match='reserved'):
        encode_entry(__mask_cache_format__=np.zeros(1))


def _fake_encoder(calls):
    def encode(img_path):
        calls.append(os.path.splitext(os.path.basename(img_path))[0])
        return ImageEmbedding(torch.full((1, 2, 2, 2), float(len(calls))), (4, 4), (4, 4))
    return encode


def test_embedding_memory_is_an_lru_bounded_by_max_items(tmp_path):
    paths = {}
    for name in 'abcd':
        paths[name] = tmp_path / f'{name}.png'
        paths[name].write_bytes(name.encode())
    calls = []
    cache = EmbeddingCache(_fake_encoder(calls), 'enc', max_items=2)

    def get(name):
        return cache.get(str(paths[name]), torch.device('cpu'))

    first_a = get('a')
    get('b')
    assert torch.equal(get('a').embedding, first_a.embedding)  # a hit; a is now the newest
    get('c')  # evicts b, the least recently used
    assert calls == ['a', 'b', 'c'] and len(cache.memory) == 2
    assert list(cache.memory) == [cache.key(str(paths['a'])), cache.key(str(paths['c']))]
    get('a')
    assert calls == ['a', 'b', 'c']  # still held
    get('b')  # was evicted: encoded again
    assert calls == ['a', 'b', 'c', 'b'] and cache.encoded == 4 and len(cache.memory) == 2


def test_embedding_memory_bound_defaults_to_64_and_can_be_lifted(tmp_path):
    calls = []
    assert EmbeddingCache(_fake_encoder(calls), 'enc').max_items == 64
    unbounded = EmbeddingCache(_fake_encoder(calls), 'enc', max_items=None)
    for index in range(5):
        path = tmp_path / f'{index}.png'
        path.write_bytes(b'x')
        unbounded.get(str(path), torch.device('cpu'))
    assert len(unbounded.memory) == 5
    with pytest.raises(ValueError, match='max_items'):
        EmbeddingCache(_fake_encoder(calls), 'enc', max_items=0)


def test_embedding_disk_entries_round_trip_through_the_compact_format(tmp_path):
    path = tmp_path / 'a.png'
    path.write_bytes(b'a')
    calls = []
    first = EmbeddingCache(_fake_encoder(calls), 'enc', cache_dir=str(tmp_path / 'c'))
    stored = first.get(str(path), torch.device('cpu'))
    second = EmbeddingCache(_fake_encoder(calls), 'enc', cache_dir=str(tmp_path / 'c'))
    read = second.get(str(path), torch.device('cpu'))
    assert calls == ['a']
    assert torch.equal(read.embedding, stored.embedding)
    assert read.input_size == (4, 4) and read.original_size == (4, 4)
