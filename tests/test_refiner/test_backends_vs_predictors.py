# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Each SAM family's backend against that family's own official predictor.

One small randomly initialised model per family (``segment_anything``'s SAM,
``segment_anything_hq``'s HQ-SAM, ``sam2``'s SAM 2.1), one non-square image
(90 x 130, so the resize and padding frames matter) and one set of prompts
(a positive and a negative point, a box and a low-res mask input) go through

* the refiner (``encode_image`` -> ``decode`` -> pick the highest predicted IoU
  -> ``upscale``), i.e. our backend plus our frames, and
* the official predictor (``SamPredictor`` / ``SAM2ImagePredictor``:
  ``set_image`` -> ``predict(multimask_output=True)``),

and must agree: image embeddings, the three candidates' low-res logits and
predicted IoUs (~1e-5), and the full-resolution mask of the chosen candidate
(equal up to pixels on the mask's boundary: float rounding of the bilinear
resizes).  Tests of a family whose extra is not installed are skipped.
"""

import numpy as np
import torch
import torch.nn.functional as F

from mmsamrefiner import SAMRefiner, build_sam
from mmsamrefiner.refiner import Prompts
from tests._families import needs_hq, needs_sam2
from tests.tiny_models import TINY_SAM2_ARCH, TINY_SAM_ARCH

HEIGHT, WIDTH = 90, 130
#: Prompts in the original image frame: (x, y) points, their labels, an xyxy box.
POINTS = np.array([[62.0, 44.0], [118.0, 12.0]], np.float32)
LABELS = np.array([1, 0])
BOX = np.array([28.0, 17.0, 97.0, 71.0], np.float32)
#: Tolerances: embeddings, low-res logits, predicted IoUs.
ATOL = 1e-5


def make_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 80, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[20:70, 30:95] = (210, 60, 40)
    image[35:55, 50:75] = (40, 190, 80)
    return image


def make_mask_input(low_res_size) -> torch.Tensor:
    """(1, h, w) logits: a blob (positive inside) over part of the low-res frame."""
    h, w = low_res_size
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing='ij')
    blob = torch.exp(-((xx - 0.45 * w) ** 2 + (yy - 0.35 * h) ** 2) / (0.02 * h * w))
    return (12.0 * blob - 4.0)[None]


def build(family, arch, seed=0):
    torch.manual_seed(seed)
    return build_sam(arch, family=family)


def run_ours(model, image, mask_input):
    """The refiner's path: embedding, (1, 3, h, w) logits, (1, 3) IoUs, and the
    chosen candidate's (H, W) mask."""
    refiner = SAMRefiner(model, iters=1)
    embedding = refiner.encode_image(image)
    prompts = Prompts(points=torch.from_numpy(POINTS)[None], labels=torch.from_numpy(LABELS)[None],
                      boxes=torch.from_numpy(BOX)[None], mask_inputs=mask_input[None],
                      expanded=torch.zeros(1, dtype=torch.bool))
    with torch.no_grad():
        low_res, ious = refiner.decode(prompts, embedding)
    best = int(ious[0].argmax())
    mask = refiner.upscale(low_res[0, best][None], embedding)[0]
    return refiner, embedding, low_res, ious, best, mask


def boundary_band(mask: torch.Tensor) -> torch.Tensor:
    """Pixels within one pixel (8-neighbourhood) of an (H, W) bool mask's boundary."""
    m = mask[None, None].float()
    dilated = F.max_pool2d(m, 3, 1, 1)
    eroded = -F.max_pool2d(-m, 3, 1, 1)
    return (dilated > eroded)[0, 0]


def assert_masks_agree(ours: torch.Tensor, theirs: torch.Tensor) -> int:
    """Equal but for pixels on ``theirs``' boundary; returns how many differ."""
    theirs = torch.as_tensor(theirs).bool()
    assert ours.shape == theirs.shape == (HEIGHT, WIDTH)
    # a meaningful comparison: the mask has a boundary inside the image
    assert 0 < int(theirs.sum()) < theirs.numel()
    diff = ours ^ theirs
    assert not (diff & ~boundary_band(theirs)).any(), 'masks differ off the boundary'
    return int(diff.sum())


def assert_close(ours, theirs, atol=ATOL):
    theirs = torch.as_tensor(theirs).to(ours)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=atol, rtol=0), float((ours - theirs).abs().max())


def test_sam_backend_matches_sam_predictor():
    from segment_anything import SamPredictor
    model = build('sam', TINY_SAM_ARCH)
    image = make_image()
    mask_input = make_mask_input(model.prompt_encoder.mask_input_size)
    _, embedding, low_res, ious, best, mask = run_ours(model, image, mask_input)

    predictor = SamPredictor(model)
    predictor.set_image(image)
    assert embedding.input_size == predictor.input_size == (89, 128)  # 90 x 130, padded below
    assert_close(embedding.embedding, predictor.features)
    masks, their_ious, their_low_res = predictor.predict(
        POINTS, LABELS, BOX, mask_input.numpy(), multimask_output=True)
    assert_close(low_res[0], their_low_res)
    assert_close(ious[0], their_ious)
    assert best == int(np.argmax(their_ious))
    assert_masks_agree(mask, masks[best])


@needs_hq
def test_hq_backend_matches_hq_sam_predictor(monkeypatch):
    from segment_anything_hq import SamPredictor
    model = build('hq', TINY_SAM_ARCH)
    image = make_image()
    mask_input = make_mask_input(model.prompt_encoder.mask_input_size)
    _, embedding, low_res, ious, best, mask = run_ours(model, image, mask_input)

    # HQ-SAM's predictor returns only the best SAM candidate plus the HQ mask:
    # the three candidates are read from the decoder's raw masks on its way.
    decoder = model.mask_decoder
    seen = {}

    def predict_masks(**kwargs):
        seen.update(kwargs)
        seen['masks'], seen['iou'] = original(**kwargs)
        return seen['masks'], seen['iou']

    original = decoder.predict_masks
    monkeypatch.setattr(decoder, 'predict_masks', predict_masks)
    predictor = SamPredictor(model)
    predictor.set_image(image)
    assert_close(embedding.embedding, predictor.features)
    masks, their_ious, their_low_res = predictor.predict(
        POINTS, LABELS, BOX, mask_input.numpy(), multimask_output=True, hq_token_only=False)
    assert_close(embedding.features['hq_features'], seen['hq_features'])
    last = decoder.num_mask_tokens - 1
    assert_close(low_res[0], (seen['masks'][:, 1:last] + seen['masks'][:, last:])[0])
    assert_close(ious[0], seen['iou'][0, 1:last])
    # the predictor's own output: the highest predicted IoU's candidate
    assert their_low_res.shape[0] == 1 and best == int(seen['iou'][0, 1:last].argmax())
    assert_close(low_res[0, best], their_low_res[0])
    assert_close(ious[0, best], their_ious[0])
    assert_masks_agree(mask, masks[0])


def sam2_predictor(model):
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    predictor = SAM2ImagePredictor(model)
    size = model.image_size  # the predictor assumes 1024 for its feature sizes
    predictor._bb_feat_sizes = [(size // 4, ) * 2, (size // 8, ) * 2, (size // 16, ) * 2]
    return predictor


def capture_prompt_encoder(model):
    """A list collecting (kwargs, (sparse, dense)) of each prompt-encoder call."""
    calls = []
    model.sam_prompt_encoder.register_forward_hook(
        lambda module, args, kwargs, out: calls.append((kwargs, out)), with_kwargs=True)
    return calls


@needs_sam2
def test_sam2_backend_matches_sam2_image_predictor():
    model = build('sam2', TINY_SAM2_ARCH)
    image = make_image()
    mask_input = make_mask_input(model.sam_prompt_encoder.mask_input_size)
    calls = capture_prompt_encoder(model)
    _, embedding, low_res, ious, best, mask = run_ours(model, image, mask_input)

    predictor = sam2_predictor(model)
    predictor.set_image(image)
    assert_close(embedding.embedding, predictor._features['image_embed'])
    for i, level in enumerate(predictor._features['high_res_feats']):
        assert_close(embedding.features[f'high_res_{i}'], level)
    masks, their_ious, their_low_res = predictor.predict(
        POINTS, LABELS, BOX, mask_input.numpy(), multimask_output=True)
    assert low_res.abs().max() < 32  # the predictor's low-res logits are clamped to +-32
    assert_close(low_res[0], their_low_res)
    assert_close(ious[0], their_ious)
    assert best == int(np.argmax(their_ious))
    assert_masks_agree(mask, masks[best])

    # What reaches the prompt encoder: the box as two corners labelled 2 and 3
    # (first), then the points, all stretched to the 128 x 128 input.
    (ours, (sparse, dense)), (theirs, (their_sparse, their_dense)) = calls
    points, labels = ours['points']
    their_points, their_labels = theirs['points']
    scale = torch.tensor([128 / WIDTH, 128 / HEIGHT])
    expected = torch.cat([torch.from_numpy(BOX).view(2, 2), torch.from_numpy(POINTS)]) * scale
    assert_close(points[0], expected)
    assert labels[0].tolist() == their_labels[0].tolist() == [2, 3, 1, 0]
    assert_close(points, their_points)
    assert ours['boxes'] is None and theirs['boxes'] is None
    assert torch.equal(ours['masks'], theirs['masks'])
    assert_close(sparse, their_sparse)
    assert_close(dense, their_dense)


@needs_sam2
def test_sam2_masks_match_the_predictor_with_large_logits():
    """Trained SAM 2 weights give logits far beyond +-32: the predictor
    upsamples them unclamped (it clamps only the low-res logits it returns),
    so must the backend, or the boundary moves."""
    model = build('sam2', TINY_SAM2_ARCH)
    image = make_image()
    mask_input = make_mask_input(model.sam_prompt_encoder.mask_input_size)
    low_res = run_ours(model, image, mask_input)[2]
    # The mask logits are hypernetwork outputs (linear in their last layer)
    # dotted with the upscaled embedding: scaling that layer scales them.
    factor = 200.0 / float(low_res.abs().max())
    with torch.no_grad():
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(factor)
            mlp.layers[-1].bias.mul_(factor)
    refiner, embedding, low_res, ious, best, mask = run_ours(model, image, mask_input)
    assert 190 < float(low_res.abs().max()) < 210

    predictor = sam2_predictor(model)
    predictor.set_image(image)
    masks, their_ious, their_low_res = predictor.predict(
        POINTS, LABELS, BOX, mask_input.numpy(), multimask_output=True)
    assert best == int(np.argmax(their_ious))
    assert_close(ious[0], their_ious)
    # the predictor returns its low-res logits clamped (~1e-7 relative to 200)
    assert_close(low_res[0].clamp(-32, 32), their_low_res, atol=1e-4)
    # Exactly equal: clamping before upsampling moves the boundary by under a
    # pixel here (74 pixels), which the boundary tolerance would let through.
    assert assert_masks_agree(mask, masks[best]) == 0
    clamped = refiner.upscale(low_res[0, best].clamp(-32, 32)[None], embedding)[0]
    assert (clamped ^ torch.as_tensor(masks[best]).bool()).sum() > 0
