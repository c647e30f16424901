# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAM families behind one interface: SAM, HQ-SAM (incl. the TinyViT model) and
SAM 2, each as a small randomly initialised model built from its own modules.

Frames are checked where they differ between families: what the prompt encoder
receives, where the mask prompt lies, and how low-res logits map to the image.
Tests of a family whose extra is not installed are skipped, saying which.
"""
import builtins
import glob
import os.path as osp
import re

import numpy as np
import pytest
import torch

from mmsamrefiner import IoUAdapter, SAMRefiner, build_sam
from mmsamrefiner.refiner.backends import backend_of
from tests._families import needs_hq, needs_sam2
from tests.tiny_models import TINY_SAM2_ARCH, TINY_SAM_ARCH

FAMILIES = [
    pytest.param('sam', TINY_SAM_ARCH, id='sam'),
    pytest.param('hq', TINY_SAM_ARCH, id='hq', marks=needs_hq),
    pytest.param('sam2', TINY_SAM2_ARCH, id='sam2', marks=needs_sam2),
]


def build(family, arch, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_sam(arch, family=family, **kwargs)


def prompt_encoder_of(model):
    if hasattr(model, 'sam_prompt_encoder'):
        return model.sam_prompt_encoder
    return model.prompt_encoder


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_refine_runs_with_sizes_from_the_model(family, arch, scene):
    image, masks = scene
    refiner = SAMRefiner(build(family, arch), iters=2)
    assert refiner.backend.family == family
    assert (refiner.encoder_size, refiner.embedding_size, refiner.low_res_size) == (
        128, (8, 8), (32, 32))
    result = refiner.refine(image, masks)
    assert result.masks.shape == masks.shape and result.masks.dtype == bool
    assert result.scores.shape == (2,) and np.isfinite(result.scores).all()
    assert f"family='{family}'" in repr(refiner)


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_prompt_encoder_receives_points_in_the_encoder_input_frame(family, arch, scene):
    image, masks = scene  # 96 x 120
    refiner = SAMRefiner(build(family, arch), iters=1, use_mask=False)
    seen = {}

    def capture(module, args, kwargs):
        seen.update(kwargs)

    prompt_encoder_of(refiner.sam).register_forward_pre_hook(capture, with_kwargs=True)
    result = refiner.refine(image, masks)
    points, labels = seen['points']
    prompts = result.prompts
    if family == 'sam2':
        # stretched to 128 x 128; the box goes first as two corners labelled 2, 3
        scale = torch.tensor([128 / 120, 128 / 96])
        corners = prompts.boxes.view(-1, 2, 2) * scale
        assert torch.allclose(points[:, :2], corners)
        assert labels[:, :2].tolist() == [[2, 3], [2, 3]]
        assert torch.allclose(points[:, 2:], prompts.points * scale)
        assert seen['boxes'] is None
    else:
        # longest side 120 -> 128, 96 -> int(102.4 + 0.5) = 102 (as SAM's
        # ResizeLongestSide), padding below
        scale = torch.tensor([128 / 120, 102 / 96])
        assert torch.allclose(points, prompts.points * scale)
        assert torch.allclose(seen['boxes'], prompts.boxes * scale.repeat(2))
        assert torch.equal(labels, prompts.labels)


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_mask_prompt_covers_the_image_part_of_the_low_res_frame(family, arch):
    refiner = SAMRefiner(build(family, arch), iters=1)
    full = torch.ones(1, 60, 120, dtype=torch.bool)  # wide image: SAM pads below
    embedding = refiner.encode_image(np.zeros((60, 120, 3), np.uint8))
    mask_input = refiner.mine_prompts(full, embedding).mask_inputs[0, 0]  # (32, 32)
    rows = (mask_input > 0).any(1).nonzero().flatten()
    if family == 'sam2':
        assert (rows.min().item(), rows.max().item()) == (0, 31)  # stretched: all rows
    else:
        assert (rows.min().item(), rows.max().item()) == (0, 15)  # 60/120 of the square


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_low_res_logits_map_to_the_image_frame(family, arch):
    refiner = SAMRefiner(build(family, arch), iters=1)
    embedding = refiner.encode_image(np.zeros((60, 120, 3), np.uint8))
    logits = torch.full((1, 32, 32), -10.0)
    logits[0, :16, :16] = 10.0  # top-left quarter of the low-res frame
    mask = refiner.upscale(logits, embedding)[0]
    assert mask.shape == (60, 120)
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    if family == 'sam2':
        # no padding: the quarter is the image's top-left quarter
        assert rows.max().item() in (29, 30) and cols.max().item() in (59, 60)
    else:
        # padded square: 16 of 32 rows cover the whole 60-row image height
        assert rows.max().item() == 59 and cols.max().item() in (59, 60)


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_state_dict_round_trips_through_the_loader(family, arch, scene, tmp_path):
    image, masks = scene
    model = build(family, arch, seed=1)
    path = tmp_path / f'{family}.pth'
    torch.save({'model': model.state_dict()} if family == 'sam2' else model.state_dict(), path)
    loaded = build(family, arch, seed=2, checkpoint=str(path))
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    first = SAMRefiner(model, iters=1).refine(image, masks)
    second = SAMRefiner(loaded, iters=1).refine(image, masks)
    np.testing.assert_array_equal(first.masks, second.masks)


@needs_hq
def test_checkpoint_of_another_family_is_refused_naming_both(tmp_path):
    hq_path, sam_path = tmp_path / 'hq.pth', tmp_path / 'sam.pth'
    torch.save(build('hq', TINY_SAM_ARCH).state_dict(), hq_path)
    torch.save(build('sam', TINY_SAM_ARCH).state_dict(), sam_path)
    with pytest.raises(ValueError, match="does not fit SAM arch .*unexpected keys.*"
                       "looks like a checkpoint of family 'hq'"):
        build('sam', TINY_SAM_ARCH, checkpoint=str(hq_path))
    with pytest.raises(ValueError, match="of family 'hq': .*missing keys.*family 'sam'"):
        build('hq', TINY_SAM_ARCH, checkpoint=str(sam_path))


@needs_sam2
def test_sam2_checkpoint_of_another_size_is_refused(tmp_path):
    path = tmp_path / 'sam2.pt'
    torch.save({'model': build('sam2', TINY_SAM2_ARCH).state_dict()}, path)
    bigger = dict(TINY_SAM2_ARCH, overrides=TINY_SAM2_ARCH['overrides'] + [
        'model.image_encoder.trunk.stages=[1,2,2,1]'])
    with pytest.raises(ValueError, match="of family 'sam2'.*(missing|unexpected) keys"):
        build('sam2', bigger, checkpoint=str(path))


@needs_sam2
def test_unknown_sam2_arch_is_a_value_error():
    with pytest.raises(ValueError, match=r"unknown SAM 2 arch 'hiera_x'; expected one of"):
        build_sam('hiera_x', family='sam2')


@needs_hq
def test_light_hq_sam_on_tiny_vit(scene):
    image, masks = scene
    refiner = SAMRefiner(build('hq', 'vit_tiny'), iters=1)
    assert refiner.encoder_size == 1024 and refiner.low_res_size == (256, 256)
    assert type(refiner.sam.image_encoder).__name__ == 'TinyViT'
    assert refiner.refine(image, masks).masks.shape == masks.shape


@needs_hq
def test_hq_candidates_are_sams_masks_plus_the_hq_mask(scene):
    image, masks = scene
    model = build('hq', TINY_SAM_ARCH)
    refiner = SAMRefiner(model, iters=1)
    embedding = refiner.encode_image(image)
    prompts = refiner.mine_prompts(masks, embedding)
    low_res, ious = refiner.decode(prompts, embedding)
    assert low_res.shape == (2, 3, 32, 32) and ious.shape == (2, 3)
    # HQ-SAM's own multimask path: best SAM candidate + HQ mask, its IoU
    backend = refiner.backend
    scale = torch.tensor([128 / 120, 102 / 96])
    sparse, dense = backend.prompt_embeddings(prompts.points * scale, prompts.labels,
                                              prompts.boxes * scale.repeat(2),
                                              prompts.mask_inputs)
    with torch.no_grad():
        own, own_iou = model.mask_decoder(
            embedding.embedding, model.prompt_encoder.get_dense_pe(), sparse, dense,
            multimask_output=True, hq_token_only=False,
            interm_embeddings=[embedding_interm(model, image)])
    best = ious.argmax(1)
    assert torch.allclose(low_res[torch.arange(2), best], own[:, 0], atol=1e-4)
    assert torch.allclose(ious.max(1).values, own_iou[:, 0], atol=1e-6)


def embedding_interm(model, image):
    backend = backend_of(model)
    with torch.no_grad():
        _, interm = model.image_encoder(backend.preprocess(image))
    return interm[0]


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_iou_adapter_sits_on_each_familys_iou_head(family, arch, scene, tmp_path):
    image, masks = scene
    model = build(family, arch)
    refiner = SAMRefiner(model, iters=1)
    embedding = refiner.encode_image(image)
    prompts = refiner.mine_prompts(masks, embedding)
    _, before = refiner.decode(prompts, embedding)
    adapter = IoUAdapter.for_sam(model)
    assert adapter.signature['family'] == family
    torch.nn.init.normal_(adapter.up.weight)
    adapter.attach(model)
    _, after = refiner.decode(prompts, embedding)
    assert not torch.allclose(before, after)
    with adapter.disabled():
        assert torch.allclose(refiner.decode(prompts, embedding)[1], before)


@needs_hq
@needs_sam2
def test_adapter_of_another_family_is_refused(tmp_path):
    path = str(tmp_path / 'iou_adapter.pth')
    IoUAdapter.for_sam(build('sam', TINY_SAM_ARCH)).save(path)
    with pytest.raises(ValueError, match="family: adapter sam vs SAM hq"):
        IoUAdapter.load(path).attach(build('hq', TINY_SAM_ARCH))


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_embedding_cache_keeps_each_familys_features(family, arch, scene, tmp_path):
    from mmsamrefiner.refiner.embedding_cache import EmbeddingCache, encoder_key
    image, _ = scene
    import cv2
    path = str(tmp_path / 'image.png')
    cv2.imwrite(path, image[..., ::-1])
    refiner = SAMRefiner(build(family, arch), iters=1)
    key = encoder_key(refiner.sam)
    first = EmbeddingCache(refiner.encode_image, key, cache_dir=str(tmp_path / 'c'))
    fresh = first.get(path, refiner.device)
    second = EmbeddingCache(refiner.encode_image, key, cache_dir=str(tmp_path / 'c'))
    cached = second.get(path, refiner.device)
    assert second.encoded == 0
    assert sorted(cached.features) == sorted(fresh.features)
    for name in fresh.features:
        assert torch.equal(cached.features[name], fresh.features[name])


#: the install command of each extra family, as docs/sam_families.md and the configs give it
INSTALL_COMMANDS = dict(hq="pip install -e '.[hq]'",
                        sam2="SAM2_BUILD_CUDA=0 pip install --no-build-isolation -e '.[sam2]'")


@pytest.mark.parametrize('family,module', [('hq', 'segment_anything_hq'), ('sam2', 'sam2')])
def test_a_missing_extra_says_how_to_install_it(family, module, monkeypatch):
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name == module or name.startswith(module + '.'):
            raise ImportError(f'No module named {name!r}', name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', blocked)
    command = INSTALL_COMMANDS[family]
    with pytest.raises(ImportError, match=re.escape(command)):
        build_sam(TINY_SAM_ARCH if family == 'hq' else TINY_SAM2_ARCH, family=family)
    root = osp.dirname(osp.dirname(osp.dirname(__file__)))
    assert command in open(osp.join(root, 'docs', 'sam_families.md')).read()
    prefix = 'hq-sam' if family == 'hq' else 'sam2'
    for config in glob.glob(osp.join(root, 'configs', '_base_', 'models', 'sam', prefix + '_*.py')):
        assert command in open(config).read(), config


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown SAM family 'sam3'"):
        build_sam('vit_b', family='sam3')


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_images_encoded_in_one_batch_equal_one_by_one(family, arch, scene):
    image, masks = scene
    other = np.ascontiguousarray(image[::-1, :100])  # another size
    refiner = SAMRefiner(build(family, arch), iters=1)
    batched = refiner.encode_images([image, other])
    for rgb, emb in zip([image, other], batched):
        single = refiner.encode_image(rgb)
        assert emb.input_size == single.input_size and emb.original_size == single.original_size
        assert torch.allclose(emb.embedding, single.embedding, atol=1e-4)
        for name in single.features:
            assert torch.allclose(emb.features[name], single.features[name], atol=1e-4)
    refined = refiner.refine(None, masks, image_embedding=batched[0]).masks
    expected = refiner.refine(image, masks).masks
    for got, want in zip(refined, expected):
        assert (got & want).sum() >= 0.99 * (got | want).sum()
