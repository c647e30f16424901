# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Finding, downloading, verifying and safely loading checkpoint files.

What ``checkpoint=`` may be (a SAM's, an IoU adapter's):

* a **name** of :data:`OFFICIAL_CHECKPOINTS` (``'sam_vit_h'``,
  ``'sam_hq_vit_tiny'``, ``'sam2.1_hiera_b+'``): the official file, downloaded
  once from its publisher and verified;
* a **URL** (``http(s)://``): downloaded once into torch hub's cache
  (``$TORCH_HOME/hub/checkpoints``) and verified after download and before
  every use: an official URL against its published digest; any other URL
  against ``sha256=`` when given (without one it is only checked to be a
  readable PyTorch file, with a warning);
* another ``scheme://`` (``s3://``, ...): read through mmengine's file backends;
* ``mmsamrefiner://NAME``: a file shipped in the package's ``checkpoints/``;
* a **local path**: read as it is.

Every file is read with ``torch.load(weights_only=True)``: tensors and plain
containers only, so no checkpoint can run code, whoever made it.

A verified download is remembered in ``<file>.verified.json`` (its size,
modification time and digest), so a 2.5 GB file is hashed once, not at every
start; a file changed since (truncated, replaced) is hashed again, and a
mismatch names the file, what was expected and what to do.

The digests of :data:`OFFICIAL_CHECKPOINTS`, where none is published by the
file's publisher, are the values that independent projects pin in their
download code (two or more agreeing; SHA-256 where known, else MD5):

* SAM: micro-sam (``micro_sam/util.py``, ``_CHECKSUMS``, 2024-04) and
  SlicerSegmentWithSAM (``SegmentWithSAM.py``), both SHA-256; the MD5s whose
  first six digits name the files agree (IOPaint ``plugins/interactive_seg.py``,
  SysCV/sam-pt ``docs/03-prepare-checkpoints.md``).
* HQ-SAM (Hugging Face ``lkeab/hq-sam``): ``vit_h`` SHA-256 from
  finegrain-ai/refiners (``conversion/models/hq_sam.py``) and
  geti-instant-learn (``utils/constants.py``); ``vit_tiny`` SHA-256 from
  geti-instant-learn and openvino model_api issue #347; ``vit_b``, ``vit_l``
  MD5 from IOPaint, SysCV/sam-pt and one more downloader.
* SAM 2.1: micro-sam (``micro_sam/v2/util.py``, ``HASHES``) and
  geti-instant-learn, SHA-256.
"""
import hashlib
import io
import json
import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import urlparse

import torch

#: ``mmsamrefiner://NAME`` names a checkpoint shipped in the package's
#: ``checkpoints/`` folder (read like a local path).
PACKAGE_CHECKPOINT_PREFIX = 'mmsamrefiner://'
PACKAGE_CHECKPOINT_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                                  'checkpoints')


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: not what was expected (digest, size),
    or not a file ``torch.load(weights_only=True)`` reads."""


@dataclass(frozen=True)
class OfficialCheckpoint:
    """An official checkpoint: where it is published and how to verify it.

    Attributes:
        family, arch: the ``dict(type='SAM', family=..., arch=...)`` it is for.
        url: where its publisher serves it.
        algorithm, digest: the published digest (``'sha256'`` or ``'md5'``,
            lower-case hex) the downloaded file must have.
        size: its size in bytes when known (a shorter file is called truncated).
    """
    family: str
    arch: str
    url: str
    algorithm: str
    digest: str
    size: Optional[int] = None


_SAM = 'https://dl.fbaipublicfiles.com/segment_anything/'
_HQ = 'https://huggingface.co/lkeab/hq-sam/resolve/main/'
_SAM2 = 'https://dl.fbaipublicfiles.com/segment_anything_2/092824/'

#: name -> the official checkpoint (``checkpoint='sam_vit_h'``).
OFFICIAL_CHECKPOINTS: Dict[str, OfficialCheckpoint] = {
    'sam_vit_b': OfficialCheckpoint(
        'sam', 'vit_b', _SAM + 'sam_vit_b_01ec64.pth', 'sha256',
        'ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912', 375042383),
    'sam_vit_l': OfficialCheckpoint(
        'sam', 'vit_l', _SAM + 'sam_vit_l_0b3195.pth', 'sha256',
        '3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622', 1249524607),
    'sam_vit_h': OfficialCheckpoint(
        'sam', 'vit_h', _SAM + 'sam_vit_h_4b8939.pth', 'sha256',
        'a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e', 2564550879),
    'sam_hq_vit_b': OfficialCheckpoint(
        'hq', 'vit_b', _HQ + 'sam_hq_vit_b.pth', 'md5', 'c6b8953247bcfdc8bb8ef91e36a6cacc'),
    'sam_hq_vit_l': OfficialCheckpoint(
        'hq', 'vit_l', _HQ + 'sam_hq_vit_l.pth', 'md5', '08947267966e4264fb39523eccc33f86'),
    'sam_hq_vit_h': OfficialCheckpoint(
        'hq', 'vit_h', _HQ + 'sam_hq_vit_h.pth', 'sha256',
        'a7ac14a085326d9fa6199c8c698c4f0e7280afdbb974d2c4660ec60877b45e35', 2570940653),
    'sam_hq_vit_tiny': OfficialCheckpoint(
        'hq', 'vit_tiny', _HQ + 'sam_hq_vit_tiny.pth', 'sha256',
        '0f32c075ccdd870ae54db2f7630e7a0878ede5a2b06d05d6fe02c65a82fb7196'),
    'sam2.1_hiera_t': OfficialCheckpoint(
        'sam2', 'hiera_t', _SAM2 + 'sam2.1_hiera_tiny.pt', 'sha256',
        '7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69', 156008466),
    'sam2.1_hiera_s': OfficialCheckpoint(
        'sam2', 'hiera_s', _SAM2 + 'sam2.1_hiera_small.pt', 'sha256',
        '6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38', 184416285),
    'sam2.1_hiera_b+': OfficialCheckpoint(
        'sam2', 'hiera_b+', _SAM2 + 'sam2.1_hiera_base_plus.pt', 'sha256',
        'a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5', 323606802),
    'sam2.1_hiera_l': OfficialCheckpoint(
        'sam2', 'hiera_l', _SAM2 + 'sam2.1_hiera_large.pt', 'sha256',
        '2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318', 898083611),
}

_OFFICIAL_BY_URL = {c.url: c for c in OFFICIAL_CHECKPOINTS.values()}


def official_checkpoint(family: str, arch: str) -> Optional[str]:
    """The name of the official checkpoint of ``family`` and ``arch``, if any."""
    for name, official in OFFICIAL_CHECKPOINTS.items():
        if (official.family, official.arch) == (family, arch):
            return name
    return None


@dataclass(frozen=True)
class ExpectedDigest:
    """What a file must hash to: ``algorithm`` (``'sha256'``/``'md5'``),
    ``digest`` (hex), ``source`` (who says so, for messages), ``size``."""
    algorithm: str
    digest: str
    source: str
    size: Optional[int] = None


def _checked_sha256(sha256) -> str:
    if not isinstance(sha256, str) or len(sha256) != 64 or any(
            c not in '0123456789abcdef' for c in sha256.lower()):
        raise ValueError(f'sha256 must be the 64 hex digits of a SHA-256 digest, got {sha256!r}')
    return sha256.lower()


def resolve_checkpoint(checkpoint: str,
                       sha256: Optional[str] = None) -> Tuple[str, Optional[ExpectedDigest]]:
    """Where ``checkpoint`` is (a URL or a local path) and the digest it must
    have (None: nothing to verify).

    Args:
        checkpoint: a name of :data:`OFFICIAL_CHECKPOINTS`, a URL,
            ``mmsamrefiner://NAME`` or a path (see the module docstring).
        sha256: the file's SHA-256 (hex); it must agree with the published
            digest of an official file.

    Raises:
        ValueError: ``sha256`` is not 64 hex digits, or contradicts an
            official file's published SHA-256.
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise TypeError(f'checkpoint must be a name, a URL or a path, got {checkpoint!r}')
    expected = None if sha256 is None else ExpectedDigest(
        'sha256', _checked_sha256(sha256), 'sha256=')
    if checkpoint.startswith(PACKAGE_CHECKPOINT_PREFIX):
        return osp.join(PACKAGE_CHECKPOINT_DIR, checkpoint[len(PACKAGE_CHECKPOINT_PREFIX):]), \
            expected
    official = OFFICIAL_CHECKPOINTS.get(checkpoint) or _OFFICIAL_BY_URL.get(checkpoint)
    if official is None:
        return checkpoint, expected
    published = ExpectedDigest(official.algorithm, official.digest,
                               f'the published {official.algorithm} of {official.url}',
                               official.size)
    if expected is not None and published.algorithm == 'sha256' and \
            expected.digest != published.digest:
        raise ValueError(f'sha256={sha256} contradicts the published SHA-256 of '
                         f'{official.url} ({published.digest}); leave sha256 out for official '
                         'files')
    return official.url, expected or published


def file_digest(path: str, algorithm: str, chunk: int = 1 << 22) -> str:
    """Hex ``algorithm`` digest of a file's content, read in blocks."""
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: str) -> str:
    return path + '.verified.json'


def _stat_key(path: str) -> dict:
    stat = os.stat(path)
    return dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def _verified_before(path: str, expected: ExpectedDigest) -> bool:
    try:
        with open(_stamp_path(path)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return False
    return stamp == dict(_stat_key(path), algorithm=expected.algorithm, digest=expected.digest)


def verify_file(path: str, expected: ExpectedDigest, what: str, remember: bool = False) -> None:
    """Raise :class:`CheckpointError` unless ``path`` has the ``expected``
    digest.

    Args:
        path: the file.
        expected: its digest (and size, when known).
        what: what the file should be (the URL), for the message.
        remember: note the verified file's size and mtime beside it
            (``<path>.verified.json``) so an unchanged file is not hashed again.
    """
    if remember and _verified_before(path, expected):
        return
    size = os.path.getsize(path)
    actual = file_digest(path, expected.algorithm)
    if actual != expected.digest:
        truncated = ''
        if expected.size is not None and size != expected.size:
            truncated = (f' It has {size} bytes instead of {expected.size}'
                         + (': it is truncated (an interrupted download?).'
                            if size < expected.size else '.'))
        raise CheckpointError(
            f'{path} is not {what}: its {expected.algorithm} is {actual}, expected '
            f'{expected.digest} ({expected.source}).{truncated} Delete it and run again to '
            'download it again; if it is a file you trust (e.g. another revision), pass its '
            'local path as checkpoint= instead.')
    if remember:
        try:
            with open(_stamp_path(path), 'w') as f:
                json.dump(dict(_stat_key(path), algorithm=expected.algorithm,
                               digest=expected.digest), f)
        except OSError:
            pass  # a read-only cache: the file is verified again next time


def cache_path(url: str, official: bool) -> str:
    """Where a downloaded ``url`` is kept: official files under their own name
    in torch hub's ``checkpoints/`` (shared with torch hub and mmengine, so a
    file they downloaded is found, and verified); any other URL under a name
    that includes a digest of the whole URL, so two URLs with one file name
    never share a cached file."""
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    if not official:
        name = f'{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}'
    return osp.join(folder, name)


def download_checkpoint(url: str, expected: Optional[ExpectedDigest],
                        progress: bool = True) -> str:
    """The local copy of ``url``: downloaded once (to a temporary name, renamed
    only once verified, so an interrupted download never counts), verified
    before every use when ``expected`` is given.

    Raises:
        OSError: the download failed (no network), naming the URL and what to
            do instead.
        CheckpointError: the file does not have the expected digest.
    """
    path = cache_path(url, url in _OFFICIAL_BY_URL)
    if osp.isfile(path):
        if expected is not None:
            verify_file(path, expected, url, remember=True)
        return path
    os.makedirs(osp.dirname(path), exist_ok=True)
    partial = f'{path}.{os.getpid()}.partial'
    try:
        torch.hub.download_url_to_file(url, partial, progress=progress)
    except OSError as error:  # urllib's URLError and HTTPError are OSErrors
        raise OSError(f'could not download the checkpoint {url} ({error}); download it on a '
                      'machine with a network and pass its local path (checkpoint=PATH, '
                      '--checkpoint PATH)') from error
    try:
        if expected is not None:
            verify_file(partial, expected, url)
        os.replace(partial, path)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    if expected is not None:
        verify_file(path, expected, url, remember=True)
    else:
        warnings.warn(f'{url} was downloaded to {path} without a digest to verify it '
                      'against; give sha256= to make sure it is the file you mean')
    return path


def load_weights(source):
    """``torch.load(source, map_location='cpu', weights_only=True)``: tensors,
    numbers, strings and plain containers only; a file holding anything else
    (code, custom classes) raises without running any of it."""
    return torch.load(source, map_location='cpu', weights_only=True)


def load_checkpoint_file(checkpoint: str, sha256: Optional[str] = None):
    """What a checkpoint holds, loaded on the CPU, weights only.

    Args:
        checkpoint: a name, URL, ``mmsamrefiner://NAME`` or path (module
            docstring).
        sha256: the SHA-256 the file must have (any source).

    Raises:
        FileNotFoundError: no file at a local path.
        OSError: a URL that cannot be downloaded.
        CheckpointError: a digest mismatch.
        Anything ``torch.load`` raises for a file it will not read
        (``pickle.UnpicklingError`` for code or custom classes).
    """
    location, expected = resolve_checkpoint(checkpoint, sha256)
    scheme = urlparse(location).scheme if '://' in location else ''
    if scheme in ('http', 'https'):
        return load_weights(download_checkpoint(location, expected))
    if scheme:
        from mmengine.fileio import get  # s3://, ... through mmengine's backends
        data = get(location)
        if expected is not None:
            actual = hashlib.new(expected.algorithm, data).hexdigest()
            if actual != expected.digest:
                raise CheckpointError(f'{location} is not the file expected: its '
                                      f'{expected.algorithm} is {actual}, expected '
                                      f'{expected.digest} ({expected.source})')
        return load_weights(io.BytesIO(data))
    path = osp.expanduser(location)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no checkpoint file at {path!r}')
    if expected is not None:
        verify_file(path, expected, f'the file {expected.source} names')
    return load_weights(path)
