# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Checkpoints by name and URL: downloaded once, verified after download and
before every use, refused with a message that says which file and what to do."""
import hashlib
import os
import shutil

import pytest
import torch

from mmsamrefiner.refiner import checkpoints
from mmsamrefiner.refiner.checkpoints import (
    OFFICIAL_CHECKPOINTS,
    CheckpointError,
    OfficialCheckpoint,
    load_checkpoint_file,
    resolve_checkpoint,
)
from mmsamrefiner.refiner.sam import build_sam
from tests.loopback_http import serve_folder
from tests.tiny_models import TINY_SAM_ARCH, make_tiny_sam


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def digest(path, algorithm='sha256'):
    return hashlib.new(algorithm, open(path, 'rb').read()).hexdigest()


def cached_files(torch_home):
    return sorted(f for _, _, files in os.walk(torch_home) for f in files)


@pytest.fixture
def served(tiny_sam_checkpoint, tmp_path, monkeypatch):
    """The tiny SAM served on loopback as ``sam_tiny_0123ab.pth``, and torch
    hub's cache in ``tmp_path``."""
    folder = tmp_path / 'serve'
    folder.mkdir()
    shutil.copy(tiny_sam_checkpoint, folder / 'sam_tiny_0123ab.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with serve_folder(folder) as (base, requests):
        yield dict(folder=folder, url=f'{base}/sam_tiny_0123ab.pth', requests=requests,
                   torch_home=tmp_path / 'torch_home')


@pytest.fixture
def official(served, monkeypatch, tiny_sam_checkpoint):
    """An official checkpoint ``'sam_tiny'`` published at the loopback URL with
    the tiny SAM's MD5 (as the SAM files are), of the given size."""
    entry = OfficialCheckpoint('sam', 'tiny', served['url'], 'md5',
                               digest(tiny_sam_checkpoint, 'md5'),
                               os.path.getsize(tiny_sam_checkpoint))
    monkeypatch.setitem(OFFICIAL_CHECKPOINTS, 'sam_tiny', entry)
    monkeypatch.setitem(checkpoints._OFFICIAL_BY_URL, entry.url, entry)
    return dict(served, entry=entry)


def test_official_table_is_complete_and_well_formed():
    families = {(c.family, c.arch) for c in OFFICIAL_CHECKPOINTS.values()}
    assert families == {('sam', a) for a in ('vit_b', 'vit_l', 'vit_h')} | {
        ('hq', a) for a in ('vit_b', 'vit_l', 'vit_h', 'vit_tiny')} | {
        ('sam2', a) for a in ('hiera_t', 'hiera_s', 'hiera_b+', 'hiera_l')}
    for name, entry in OFFICIAL_CHECKPOINTS.items():
        assert entry.url.startswith('https://')
        length = dict(sha256=64, md5=32)[entry.algorithm]
        assert len(entry.digest) == length and int(entry.digest, 16) >= 0, name
        if entry.family == 'sam':  # the file name carries the start of its MD5
            assert entry.url.rsplit('_', 1)[1].startswith(('01ec64', '0b3195', '4b8939'))
    # the URL given for a name and the name's URL resolve to the same digest
    for name, entry in OFFICIAL_CHECKPOINTS.items():
        assert resolve_checkpoint(name) == resolve_checkpoint(entry.url)
        assert resolve_checkpoint(name)[1].digest == entry.digest


def test_official_by_name_is_downloaded_once_verified_and_remembered(official, monkeypatch):
    first = load_checkpoint_file('sam_tiny')
    assert official['requests'] == ['/sam_tiny_0123ab.pth']
    hashed = []
    real = checkpoints.file_digest
    monkeypatch.setattr(checkpoints, 'file_digest',
                        lambda path, algorithm, **kw: hashed.append(path) or
                        real(path, algorithm, **kw))
    second = load_checkpoint_file(official['url'])  # the URL reaches the same file
    assert len(official['requests']) == 1 and hashed == []  # verified once, remembered
    assert first.keys() == second.keys() == make_tiny_sam().state_dict().keys()
    # official files keep their own name in torch hub's cache (shared with mmengine)
    assert cached_files(official['torch_home']) == ['sam_tiny_0123ab.pth',
                                                    'sam_tiny_0123ab.pth.verified.json']


def test_a_file_already_cached_under_the_official_name_is_verified(official, tmp_path):
    cache = official['torch_home'] / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    impostor = cache / 'sam_tiny_0123ab.pth'
    torch.save(make_tiny_sam(seed=1).state_dict(), impostor)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file('sam_tiny')
    message = str(info.value)
    assert str(impostor) in message and official['entry'].digest in message
    assert digest(impostor, 'md5') in message and 'Delete it and run again' in message
    assert official['requests'] == []  # the cached file was used, and refused


def test_a_truncated_cached_file_is_called_truncated(official):
    load_checkpoint_file('sam_tiny')
    cached = official['torch_home'] / 'hub' / 'checkpoints' / 'sam_tiny_0123ab.pth'
    data = cached.read_bytes()
    cached.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated') as info:
        load_checkpoint_file('sam_tiny')
    assert str(cached) in str(info.value)
    assert f'{len(data) // 2} bytes instead of {len(data)}' in str(info.value)
    os.remove(cached)  # what the message says to do
    assert load_checkpoint_file('sam_tiny').keys() == make_tiny_sam().state_dict().keys()


def test_a_download_with_the_wrong_content_is_refused_and_not_kept(official):
    torch.save(make_tiny_sam(seed=2).state_dict(), official['folder'] / 'sam_tiny_0123ab.pth')
    with pytest.raises(CheckpointError, match='is not http://127.0.0.1'):
        load_checkpoint_file('sam_tiny')
    assert cached_files(official['torch_home']) == []  # nothing left to be used later


def test_other_urls_are_verified_against_sha256(served, tiny_sam_checkpoint):
    url = served['url']
    with pytest.raises(CheckpointError, match='expected 0{64}'):
        build_sam(TINY_SAM_ARCH, url, sha256='0' * 64)
    assert cached_files(served['torch_home']) == []
    sam = build_sam(TINY_SAM_ARCH, url, sha256=digest(tiny_sam_checkpoint))
    assert same_weights(sam, make_tiny_sam())
    with pytest.raises(ValueError, match='64 hex digits'):
        build_sam(TINY_SAM_ARCH, url, sha256='abc')


def test_unverified_url_warns_and_is_cached_under_a_name_of_its_url(served):
    with pytest.warns(UserWarning, match='without a digest'):
        build_sam(TINY_SAM_ARCH, served['url'])
    build_sam(TINY_SAM_ARCH, served['url'])
    assert len(served['requests']) == 1
    (name,) = cached_files(served['torch_home'])
    # two URLs with one file name never share a cached file
    assert name.endswith('-sam_tiny_0123ab.pth') and name != 'sam_tiny_0123ab.pth'


def test_a_local_file_with_sha256_is_verified(tiny_sam_checkpoint):
    assert same_weights(build_sam(TINY_SAM_ARCH, tiny_sam_checkpoint,
                                  sha256=digest(tiny_sam_checkpoint)), make_tiny_sam())
    with pytest.raises(CheckpointError, match=tiny_sam_checkpoint.replace('.', r'\.')):
        build_sam(TINY_SAM_ARCH, tiny_sam_checkpoint, sha256='f' * 64)


def test_an_official_name_for_another_arch_is_refused_before_any_download(served):
    with pytest.raises(ValueError, match="arch 'vit_h'.*family='sam', arch='vit_h'"):
        build_sam('vit_b', 'sam_vit_h')
    assert served['requests'] == []


def test_a_sha256_that_contradicts_the_published_one_is_refused():
    with pytest.raises(ValueError, match='contradicts the published SHA-256'):
        resolve_checkpoint('sam_vit_h', sha256='0' * 64)
