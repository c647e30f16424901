# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefiner.refine: shapes, frames, bad input, determinism, batching, rounds."""
import re

import cv2
import numpy as np
import pytest
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.registry import MODELS
from tests.tiny_models import TINY_SAM_ARCH


@pytest.fixture
def refiner(tiny_sam):
    return SAMRefiner(tiny_sam, iters=2)


def test_sizes_come_from_the_model(refiner):
    assert refiner.encoder_size == TINY_SAM_ARCH['img_size']
    assert refiner.embedding_size == (8, 8)
    assert refiner.low_res_size == (32, 32)
    assert 'encoder_size=128' in repr(refiner)


def test_numpy_in_numpy_out(refiner, scene):
    image, masks = scene
    result = refiner.refine(image, masks)
    assert isinstance(result.masks, np.ndarray)
    assert result.masks.shape == masks.shape and result.masks.dtype == bool
    assert result.scores.shape == (2,) and result.scores.dtype == np.float32
    assert result.empty.tolist() == [False, False]
    assert len(result) == 2
    assert result.prompts.points.shape == (2, 2, 2)


def test_tensor_in_tensor_out(refiner, scene):
    image, masks = scene
    result = refiner.refine(image, torch.from_numpy(masks).to(torch.uint8))
    assert isinstance(result.masks, torch.Tensor) and result.masks.dtype == torch.bool
    assert result.masks.shape == masks.shape
    np.testing.assert_array_equal(result.masks.numpy(), refiner.refine(image, masks).masks)


def test_accepts_0_1_and_0_255(refiner, scene):
    image, masks = scene
    reference = refiner.refine(image, masks).masks
    for values in (masks.astype(np.uint8), masks.astype(np.uint8) * 255,
                   masks.astype(np.float32)):
        np.testing.assert_array_equal(refiner.refine(image, values).masks, reference)


def test_deterministic(refiner, scene):
    image, masks = scene
    first, second = refiner.refine(image, masks), refiner.refine(image, masks)
    np.testing.assert_array_equal(first.masks, second.masks)
    np.testing.assert_array_equal(first.scores, second.scores)


def test_batch_equals_one_at_a_time(refiner, scene):
    image, masks = scene
    batch = refiner.refine(image, masks)
    for i in range(len(masks)):
        single = refiner.refine(image, masks[i:i + 1])
        np.testing.assert_array_equal(single.masks[0], batch.masks[i])
        np.testing.assert_allclose(single.scores[0], batch.scores[i], rtol=1e-5)


def test_chunked_decoder_batches_give_the_same_masks(tiny_sam, scene):
    image, masks = scene
    many = np.concatenate([masks] * 3)
    whole = SAMRefiner(tiny_sam, iters=2, max_batch=64).refine(image, many)
    chunked = SAMRefiner(tiny_sam, iters=2, max_batch=4).refine(image, many)
    np.testing.assert_array_equal(whole.masks, chunked.masks)


def test_iterations_feed_back(tiny_sam, scene):
    image, masks = scene
    two_rounds = SAMRefiner(tiny_sam, iters=2).refine(image, masks)
    one = SAMRefiner(tiny_sam, iters=1)
    by_hand = one.refine(image, one.refine(image, masks).masks)
    np.testing.assert_array_equal(two_rounds.masks, by_hand.masks)
    # and the second round did change something (it is not a no-op)
    assert not np.array_equal(one.refine(image, masks).masks, masks)


def test_one_encoder_call_and_one_decoder_batch_per_round(tiny_sam, scene):
    image, masks = scene
    calls = {'encoder': 0, 'decoder': []}
    tiny_sam.image_encoder.register_forward_hook(
        lambda m, i, o: calls.__setitem__('encoder', calls['encoder'] + 1))
    tiny_sam.mask_decoder.register_forward_hook(
        lambda m, i, kw, o: calls['decoder'].append(len(o[0])), with_kwargs=True)
    SAMRefiner(tiny_sam, iters=3).refine(image, masks)
    assert calls['encoder'] == 1
    assert calls['decoder'] == [2, 2, 2]


def test_precomputed_embedding_is_used(refiner, scene):
    image, masks = scene
    embedding = refiner.encode_image(image)
    assert embedding.embedding.shape == (1, 32, 8, 8)
    assert embedding.original_size == (96, 120) and embedding.input_size == (102, 128)
    np.testing.assert_array_equal(
        refiner.refine(None, masks, image_embedding=embedding).masks,
        refiner.refine(image, masks).masks)


def test_bgr_and_path_inputs_match_rgb(refiner, scene, tmp_path):
    image, masks = scene
    reference = refiner.refine(image, masks).masks
    bgr = np.ascontiguousarray(image[..., ::-1])
    np.testing.assert_array_equal(
        refiner.refine(bgr, masks, channel_order='bgr').masks, reference)
    path = tmp_path / 'scene.png'
    cv2.imwrite(str(path), bgr)
    np.testing.assert_array_equal(refiner.refine(str(path), masks).masks, reference)


def test_empty_mask_is_flagged_and_left_empty(refiner, scene):
    image, masks = scene
    with_empty = np.stack([masks[0], np.zeros_like(masks[0]), masks[1]])
    result = refiner.refine(image, with_empty)
    assert result.empty.tolist() == [False, True, False]
    assert not result.masks[1].any() and result.scores[1] == 0
    np.testing.assert_array_equal(result.masks[[0, 2]], refiner.refine(image, masks).masks)


def test_no_masks(refiner, scene):
    image, _ = scene
    result = refiner.refine(image, np.zeros((0, 96, 120), bool))
    assert result.masks.shape == (0, 96, 120) and result.scores.shape == (0,)
    assert result.prompts is None


@pytest.mark.parametrize('masks, error, message', [
    (np.zeros((1, 50, 60), bool), ValueError, r'\(50, 60\).*\(96, 120\)'),
    (np.zeros((96, 120), bool), ValueError, r'\(N, H, W\)'),
    (np.full((1, 96, 120), 2, np.uint8), ValueError, r'binary.*2'),
    (np.full((1, 96, 120), 0.5, np.float32), ValueError, 'binary'),
    ([[0, 1]], TypeError, 'ndarray or tensor'),
])
def test_bad_masks_are_refused(refiner, scene, masks, error, message):
    image, _ = scene
    with pytest.raises(error, match=message):
        refiner.refine(image, masks)


def test_bad_images_are_refused(refiner, scene, tmp_path):
    image, masks = scene
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='cannot be read'):
        refiner.refine(str(broken), masks)
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        refiner.refine(str(tmp_path / 'missing.jpg'), masks)
    with pytest.raises(ValueError, match='uint8'):
        refiner.refine(image.astype(np.float32), masks)
    with pytest.raises(ValueError, match='channel_order'):
        refiner.refine(image, masks, channel_order='hsv')


@pytest.mark.parametrize('value', ['RGB', 'hsv', '', None, b'rgb', ['rgb']])
def test_one_channel_order_rule_for_every_entry_point(refiner, scene, value):
    from mmsamrefiner.refiner.inputs import check_channel_order
    image, masks = scene
    assert check_channel_order('rgb') == 'rgb' and check_channel_order('bgr') == 'bgr'
    message = r"channel_order must be 'rgb' or 'bgr' \(.*\), got " + re.escape(repr(value))
    embedding = refiner.encode_image(image)
    for call in (lambda: check_channel_order(value),
                 lambda: refiner.encode_images([], value),
                 lambda: refiner.refine(None, masks, value, image_embedding=embedding),
                 lambda: refiner.refine_semantic(None, masks[0].astype(np.uint8),
                                                 channel_order=value,
                                                 image_embedding=embedding)):
        with pytest.raises(ValueError, match=message):
            call()


def test_inputs_are_not_modified(refiner, scene):
    image, masks = scene
    image_copy, masks_copy = image.copy(), masks.copy()
    refiner.refine(image, masks)
    np.testing.assert_array_equal(image, image_copy)
    np.testing.assert_array_equal(masks, masks_copy)


def test_bad_settings_are_refused(tiny_sam):
    with pytest.raises(ValueError, match='iters'):
        SAMRefiner(tiny_sam, iters=0)
    with pytest.raises(ValueError, match='elastic_margin'):
        SAMRefiner(tiny_sam, elastic_margin=1.5)
    with pytest.raises(ValueError, match='box_geometry'):
        SAMRefiner(tiny_sam, elastic_margin=0.1, box_geometry='reference')


def test_built_from_config_with_reference_defaults(tiny_sam_cfg):
    refiner = MODELS.build(dict(type='SAMRefiner', sam=tiny_sam_cfg))
    assert isinstance(refiner, SAMRefiner)
    assert refiner.iters == 5
    m = refiner.miner
    assert (m.use_point, m.use_box, m.use_mask, m.add_neg) == (True, True, True, True)
    assert (m.elastic_margin, m.gamma, m.strength) == (0.0, 4.0, 30.0)
    assert m.box_geometry == 'authors' and "box_geometry='authors'" in repr(refiner)


def test_elastic_boxes_reach_sam_grown_only_where_flagged(tiny_sam, scene):
    """With the elastic box on, the boxes SAM is given contain the tight ones,
    are larger exactly where ``expanded`` says so and equal elsewhere; with it
    off (``elastic_margin=0``) no box grows.  A near-zero margin grows every
    side whose strip has any similar pixel, so some box grows here."""
    image, masks = scene
    tight = SAMRefiner(tiny_sam, iters=1, elastic_margin=0.0).refine(image, masks).prompts
    assert not tight.expanded.any()
    for margin in (1e-6, 0.1):
        prompts = SAMRefiner(tiny_sam, iters=1, elastic_margin=margin).refine(
            image, masks).prompts
        grown, same = prompts.boxes, tight.boxes
        contains = (grown[:, :2] <= same[:, :2]).all(1) & (grown[:, 2:] >= same[:, 2:]).all(1)
        assert contains.all(), margin
        differs = (grown != same).any(1)
        assert torch.equal(differs, prompts.expanded), margin
    near_zero = SAMRefiner(tiny_sam, iters=1, elastic_margin=1e-6).refine(image, masks)
    assert near_zero.prompts.expanded.any()


def test_refined_masks_differ_from_single_box_prompt(tiny_sam, scene):
    """Prompt switches reach SAM: box-only refinement gives other masks."""
    image, masks = scene
    full = SAMRefiner(tiny_sam, iters=1).refine(image, masks)
    box_only = SAMRefiner(tiny_sam, iters=1, use_point=False,
                          use_mask=False).refine(image, masks)
    assert box_only.prompts.points is None
    assert not np.array_equal(full.masks, box_only.masks)


@pytest.mark.slow
def test_a_thousand_masks_go_through_the_decoder_in_max_batch_chunks(tiny_sam, scene):
    image, _ = scene
    rng = np.random.default_rng(0)
    masks = np.zeros((1000, 96, 120), bool)
    for index, (y, x) in enumerate(zip(rng.integers(0, 88, 1000), rng.integers(0, 112, 1000))):
        masks[index, y:y + 8, x:x + 8] = True
    refiner = SAMRefiner(tiny_sam, iters=1, max_batch=64)
    sizes = []
    refiner.sam.prompt_encoder.register_forward_pre_hook(
        lambda module, args, kwargs: sizes.append(len(kwargs['boxes'])), with_kwargs=True)
    result = refiner.refine(image, masks)
    assert result.masks.shape == (1000, 96, 120)
    assert sizes == [64] * 15 + [40]  # ceil(1000 / 64) decoder calls, none larger


def test_elastic_margin_is_the_only_name_of_the_elastic_threshold(tiny_sam):
    assert SAMRefiner(tiny_sam, elastic_margin=0.1).miner.elastic_margin == 0.1
    with pytest.raises(TypeError, match="'margin'"):
        SAMRefiner(tiny_sam, margin=0.1)


#: One value away from the default for every setting that changes the results.
RESULT_SETTINGS = dict(iters=3, use_point=False, use_box=False, use_mask=False, add_neg=False,
                       elastic_margin=0.1, gamma=2.0, strength=10.0, box_geometry='symmetric',
                       encoder_dtype='bfloat16', stm='authors', residual_passes=1,
                       residual_opening=1, residual_min_area=16)


def test_every_result_setting_is_named_in_the_fingerprint_settings(tiny_sam):
    import inspect
    arguments = set(inspect.signature(SAMRefiner).parameters)
    # the settings that only split, place or schedule the work (the masks are
    # the same up to float rounding; see SAMRefiner.result_settings)
    work_only = {'max_batch', 'device', 'encoder_attention', 'compile_encoder', 'decoder_attention'}
    assert arguments == set(RESULT_SETTINGS) | {'sam', 'iou_adapter'} | work_only
    settings = SAMRefiner(tiny_sam).result_settings()
    named = set(settings) | set(settings['prompts'])
    assert set(RESULT_SETTINGS) <= named and not work_only & named
    assert settings['iou_adapter'] is None and settings['sam']['family'] == 'sam'


@pytest.mark.parametrize('name', sorted(RESULT_SETTINGS))
def test_each_result_setting_changes_the_fingerprint(tiny_sam, name):
    base = SAMRefiner(tiny_sam).fingerprint()
    assert SAMRefiner(tiny_sam).fingerprint() == base
    assert SAMRefiner(tiny_sam, **{name: RESULT_SETTINGS[name]}).fingerprint() != base


def test_max_batch_and_device_leave_the_fingerprint(tiny_sam, scene):
    """They split and place the work; the masks are the same."""
    base = SAMRefiner(tiny_sam)
    chunked = SAMRefiner(tiny_sam, max_batch=1, device='cpu')
    assert chunked.fingerprint() == base.fingerprint()
    image, masks = scene
    np.testing.assert_array_equal(chunked.refine(image, masks).masks,
                                  base.refine(image, masks).masks)


def test_fingerprint_of_any_refiner(tiny_sam):
    from mmsamrefiner.refiner.refiner import fingerprint_of

    class Plain:
        def __repr__(self):
            return 'Plain(x=1)'

    class Named:
        fingerprint = 'not callable'

        def __repr__(self):
            return 'Named()'

    refiner = SAMRefiner(tiny_sam)
    assert fingerprint_of(refiner) == refiner.fingerprint()
    assert fingerprint_of(Plain()) == 'Plain(x=1)' and fingerprint_of(Named()) == 'Named()'


def test_the_adapters_settings_and_weights_change_the_fingerprint():
    from mmsamrefiner.refiner.iou_adapter import IoUAdapter
    from mmsamrefiner.refiner.sam import build_sam

    def fingerprint(**adapter):
        torch.manual_seed(0)
        sam = build_sam(TINY_SAM_ARCH)
        made = IoUAdapter.for_sam(sam, **adapter)
        torch.nn.init.normal_(made.up.weight)
        return SAMRefiner(sam, iou_adapter=made).fingerprint()

    base = fingerprint()
    assert fingerprint() == base
    assert fingerprint(scale=2.0) != base
    assert fingerprint(rank=2) != base


def test_fingerprint_follows_settings_and_weight_content(tiny_sam):
    from mmsamrefiner.refiner.iou_adapter import IoUAdapter
    from mmsamrefiner.refiner.sam import build_sam
    base = SAMRefiner(tiny_sam).fingerprint()
    assert SAMRefiner(tiny_sam).fingerprint() == base  # same settings, same weights
    assert SAMRefiner(tiny_sam, iters=3).fingerprint() != base
    assert SAMRefiner(tiny_sam, encoder_dtype='bfloat16').fingerprint() != base
    retrained = build_sam(TINY_SAM_ARCH)  # same architecture, other weights
    retrained.load_state_dict(tiny_sam.state_dict())
    assert SAMRefiner(retrained).fingerprint() == base
    with torch.no_grad():
        retrained.mask_decoder.iou_token.weight.add_(1e-3)
    plain = SAMRefiner(retrained).fingerprint()
    assert plain != base
    adapter = IoUAdapter.for_sam(retrained)
    torch.nn.init.normal_(adapter.up.weight)
    assert SAMRefiner(retrained, iou_adapter=adapter).fingerprint() not in (base, plain)
