# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Building SAMs and loading checkpoints through the real loaders (URLs and
digests: test_checkpoints.py)."""
import pytest
import torch
from mmengine.registry import DefaultScope
from segment_anything.modeling import Sam

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.sam import SAM_ARCHS, SAM_CHECKPOINT_URLS, build_sam, resolve_sam_arch
from mmsamrefiner.registry import MODELS
from tests.tiny_models import TINY_SAM_ARCH, make_tiny_sam


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_by_path_round_trips(tiny_sam_checkpoint):
    sam = build_sam(TINY_SAM_ARCH, tiny_sam_checkpoint)
    assert isinstance(sam, Sam) and not sam.training
    assert same_weights(sam, make_tiny_sam())
    assert not same_weights(build_sam(TINY_SAM_ARCH), make_tiny_sam(seed=1))


def test_checkpoint_wrapped_in_state_dict_key(tmp_path):
    path = tmp_path / 'wrapped.pth'
    torch.save({'state_dict': make_tiny_sam().state_dict(), 'meta': {}}, path)
    assert same_weights(build_sam(TINY_SAM_ARCH, str(path)), make_tiny_sam())


def test_checkpoint_url_that_cannot_be_fetched_says_what_to_do(tmp_path, monkeypatch):
    import socket
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    url = f'http://127.0.0.1:{port}/sam_vit_b_01ec64.pth'
    with pytest.raises(OSError, match='could not download the checkpoint') as info:
        build_sam(TINY_SAM_ARCH, url)
    assert url in str(info.value) and '--checkpoint PATH' in str(info.value)


def test_checkpoint_of_another_arch_is_refused(tiny_sam_checkpoint):
    other = dict(TINY_SAM_ARCH, embed_dim=48)
    with pytest.raises(ValueError) as info:
        build_sam(other, tiny_sam_checkpoint)
    message = str(info.value)
    assert tiny_sam_checkpoint in message
    assert 'embed_dim=48' in message  # the arch asked for
    assert 'embed_dim=32' in message  # what the checkpoint looks like
    assert 'another shape' in message


def test_checkpoint_for_official_arch_is_named(tmp_path):
    """A vit_b-shaped encoder is recognised by width and depth."""
    from mmsamrefiner.refiner.sam import guess_sam_arch
    fake = {'image_encoder.patch_embed.proj.weight': torch.zeros(768, 3, 16, 16)}
    fake.update({f'image_encoder.blocks.{i}.norm1.weight': torch.zeros(1)
                 for i in range(12)})
    assert guess_sam_arch(fake) == 'vit_b'
    path = tmp_path / 'fake_vit_b.pth'
    torch.save(fake, path)
    with pytest.raises(ValueError, match=r"looks like a checkpoint for 'vit_b'"):
        build_sam(TINY_SAM_ARCH, str(path))


def test_missing_checkpoint_and_unknown_arch():
    with pytest.raises(FileNotFoundError):
        build_sam(TINY_SAM_ARCH, '/nonexistent/sam.pth')
    with pytest.raises(ValueError, match="unknown SAM arch 'vit_x'"):
        build_sam('vit_x')
    with pytest.raises(ValueError, match=r"unknown SAM arch settings \['colour'\]"):
        build_sam(dict(TINY_SAM_ARCH, colour='red'))
    with pytest.raises(ValueError, match=r"lacks \['depth'\]"):
        build_sam({k: v for k, v in TINY_SAM_ARCH.items() if k != 'depth'})


def test_official_archs_and_urls():
    assert set(SAM_ARCHS) == set(SAM_CHECKPOINT_URLS) == {'vit_b', 'vit_l', 'vit_h', 'toy'}
    assert resolve_sam_arch('vit_b')['embed_dim'] == 768
    assert resolve_sam_arch('vit_h')['depth'] == 32


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmseg'])
def test_config_build_under_any_default_scope(tiny_sam_cfg, scope):
    cfg = dict(type='SAMRefiner', sam=tiny_sam_cfg, iters=1)
    if scope is None:
        refiner = MODELS.build(cfg)
    else:
        with DefaultScope.overwrite_default_scope(scope):
            refiner = MODELS.build(dict(cfg, type='mmsamrefiner.SAMRefiner'))
    assert isinstance(refiner, SAMRefiner)
    assert same_weights(refiner.sam, make_tiny_sam())


def test_refiner_accepts_built_sam_and_refuses_others(tiny_sam):
    assert SAMRefiner(tiny_sam).sam is tiny_sam
    with pytest.raises(TypeError, match='SAM 2 model or a config'):
        SAMRefiner('vit_b')
    with pytest.raises(TypeError, match='is not a SAM, HQ-SAM or SAM 2 model'):
        SAMRefiner(torch.nn.Linear(2, 2))
