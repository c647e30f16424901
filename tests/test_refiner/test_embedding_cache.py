# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The embedding cache: its memory is a bounded LRU, its disk entries round-trip."""
import os

import pytest
import torch

from mmsamrefiner.refiner.backends import ImageEmbedding
from mmsamrefiner.refiner.embedding_cache import EmbeddingCache


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


def test_embedding_key_follows_the_encoder_and_the_file_and_is_a_package_digest(tmp_path):
    from mmsamrefiner.utils.digest import digest_bytes, file_stamp
    path = tmp_path / 'a.png'
    path.write_bytes(b'a')
    cache = EmbeddingCache(_fake_encoder([]), 'enc')
    key = cache.key(str(path))
    assert key == digest_bytes(f'enc|{file_stamp(str(path), whole_path=True)}')
    assert len(key) == 32 and key == cache.key(str(path))
    assert EmbeddingCache(_fake_encoder([]), 'other').key(str(path)) != key
    path.write_bytes(b'ab')  # another size
    assert cache.key(str(path)) != key
    os.utime(path, ns=(1, 1))  # another modification time
    rewritten = cache.key(str(path))
    os.utime(path, ns=(2, 2))
    assert cache.key(str(path)) != rewritten
    with pytest.raises(FileNotFoundError, match='missing.png'):
        cache.key(str(tmp_path / 'missing.png'))


def test_encoder_key_follows_every_weight_of_the_encoder():
    """A retrained encoder changed only in a middle layer gets another key;
    the same weights (another model object) keep it."""
    from mmsamrefiner.refiner.embedding_cache import encoder_key
    from mmsamrefiner.refiner.sam import build_sam_model
    torch.manual_seed(0)
    sam = build_sam_model('toy')
    other = build_sam_model('toy')
    other.load_state_dict(sam.state_dict())
    assert encoder_key(other) == encoder_key(sam)
    assert encoder_key(sam, 'bfloat16') != encoder_key(sam)
    names = list(dict(other.image_encoder.named_parameters()))
    with torch.no_grad():
        dict(other.image_encoder.named_parameters())[names[len(names) // 2]].add_(1e-3)
    assert encoder_key(other) != encoder_key(sam)
