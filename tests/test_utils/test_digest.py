# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The digest primitives: what each binds, and formats stored records rely on."""
import os

import numpy as np
import pytest
import torch

from mmsamrefiner.utils.digest import (
    canonical_json,
    digest_arrays,
    digest_bytes,
    digest_file,
    digest_json,
    digest_tensors,
    file_stamp,
    hasher,
    update_tensors,
)


def test_one_hash_function_32_hex_digits_and_a_fixed_format():
    # tools/refine.py's records store these digests: a change would redo every
    # finished image of every collection, so the format is pinned
    assert digest_bytes(b'png') == '3449a8e147e9b8b4dede218577f3fe88'
    assert digest_bytes('png') == digest_bytes(b'png') == hasher(b'png').hexdigest()
    assert digest_json({'b': 1, 'a': [1, None]}) == digest_json({'a': [1, None], 'b': 1})
    assert canonical_json({'b': 1, 'a': (1, )}) == b'{"a": [1], "b": 1}'


def test_file_digest_is_of_the_content_and_unreadable_files_raise(tmp_path):
    path = tmp_path / 'a.bin'
    path.write_bytes(b'x' * (3 << 20))  # several read blocks
    assert digest_file(str(path)) == digest_bytes(b'x' * (3 << 20))
    with pytest.raises(OSError):
        digest_file(str(tmp_path / 'missing'))


def test_file_stamp_binds_name_size_and_mtime_without_reading(tmp_path):
    path = tmp_path / 'img.png'
    path.write_bytes(b'abc')
    os.utime(path, ns=(10**18, 10**18))
    assert file_stamp(str(path)) == 'img.png:3:1000000000000000000'
    assert file_stamp(str(path), whole_path=True) == f'{path}:3:1000000000000000000'
    path.write_bytes(b'abd')  # same size, same mtime: not seen (no content read)
    os.utime(path, ns=(10**18, 10**18))
    assert file_stamp(str(path)) == 'img.png:3:1000000000000000000'
    os.utime(path, ns=(10**18, 10**18 + 1))
    assert file_stamp(str(path)) != 'img.png:3:1000000000000000000'
    assert file_stamp(str(tmp_path / 'gone.png')) == 'gone.png:missing'
    assert file_stamp(None) == ':missing'


def test_array_digests_bind_dtype_shape_values_and_settings():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    base = digest_arrays(a, prefix='s')
    assert digest_arrays(a.copy(), prefix='s') == base
    assert digest_arrays(np.asfortranarray(a), prefix='s') == base  # values, not layout
    assert digest_arrays(a.reshape(4, 3), prefix='s') != base
    assert digest_arrays(a.astype(np.int64), prefix='s') != base
    assert digest_arrays(a, prefix='t') != base
    changed = a.copy()
    changed[2, 3] += 1
    assert digest_arrays(changed, prefix='s') != base
    # the parts are bound in order: (x, y) is not (y, x)
    b = np.zeros(2, bool)
    assert digest_arrays(a, b) != digest_arrays(b, a)


def test_tensor_digest_samples_large_tensors_and_binds_names_shapes_dtypes():

    def digest(named):
        h = hasher()
        update_tensors(h, named, max_values=100)
        return h.hexdigest()

    big = torch.zeros(1000)
    base = digest([('w', big)])
    assert digest([('w', big.clone())]) == base
    assert digest([('v', big)]) != base
    assert digest([('w', big.reshape(10, 100))]) != base
    assert digest([('w', big.double())]) != base
    sampled = big.clone()
    sampled[10] = 1  # every 10th value is read
    assert digest([('w', sampled)]) != base
    between = big.clone()
    between[11] = 1  # between samples: the price of a cheap digest
    assert digest([('w', between)]) == base
    assert digest_tensors([('w', big)], max_values=100) == base
    assert digest_tensors([('w', big)]) == digest_tensors([('w', big.clone())]) != base
