# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""IoUAdapter: the ranking loss on hand-made numbers, attaching to SAM, files."""
import pytest
import torch

from mmsamrefiner import IoUAdapter, SAMRefiner
from mmsamrefiner.refiner.iou_adapter import (
    AdaptedLinear,
    candidate_ious,
    margin_ranking_loss,
    ranking_targets,
)
from mmsamrefiner.refiner.sam import build_sam_model
from tests.tiny_models import TINY_SAM_ARCH, make_tiny_sam


def test_loss_is_the_hinge_sum_over_the_other_candidates():
    predictions = torch.tensor([[0.5, 0.4, 0.9],
                                [0.5, 0.4, 0.9]])
    # row 0, target 0: max(0, .4-.5+.02) + max(0, .9-.5+.02) = 0 + 0.42
    # row 1, target 2: both others below 0.9 - 0.02: 0
    loss = margin_ranking_loss(predictions, torch.tensor([0, 2]), margin=0.02)
    assert loss.item() == pytest.approx(0.42 / 2)


def test_loss_counts_the_margin_for_near_ties():
    predictions = torch.tensor([[0.50, 0.49, 0.10]])
    # target 0 leads by 0.01 < margin: 0.49 - 0.50 + 0.02 = 0.01
    assert margin_ranking_loss(predictions, torch.tensor([0])).item() == pytest.approx(0.01)


def test_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r'\(N, M\) predictions'):
        margin_ranking_loss(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


def test_targets_are_the_candidate_closest_to_the_coarse_mask():
    coarse = torch.zeros(1, 4, 4, dtype=torch.bool)
    coarse[0, :2] = True  # top half
    candidates = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    candidates[0, 0] = True  # whole image: IoU 0.5
    candidates[0, 1, :2, :2] = True  # top-left quarter: IoU 0.5
    candidates[0, 2, :2, :3] = True  # 6 of 8: IoU 0.75
    assert torch.allclose(candidate_ious(candidates, coarse), torch.tensor([[0.5, 0.5, 0.75]]))
    assert ranking_targets(candidate_ious(candidates, coarse)).tolist() == [2]
    assert ranking_targets(torch.tensor([[0.5, 0.75, 0.75]])).tolist() == [1]  # ties: the lower


def iou_head_scores(sam, seed=0):
    torch.manual_seed(seed)
    hidden = torch.randn(5, sam.mask_decoder.iou_prediction_head.layers[-1].in_features)
    return sam.mask_decoder.iou_prediction_head.layers[-1](hidden), hidden


def test_fresh_adapter_changes_nothing_and_keeps_sams_keys():
    sam = make_tiny_sam()
    keys = list(sam.state_dict())
    before, hidden = iou_head_scores(sam)
    adapter = IoUAdapter.for_sam(sam, rank=4).attach(sam)
    assert isinstance(sam.mask_decoder.iou_prediction_head.layers[-1], AdaptedLinear)
    assert list(sam.state_dict()) == keys  # the adapter's weights are not SAM's
    assert torch.equal(sam.mask_decoder.iou_prediction_head.layers[-1](hidden), before)
    assert adapter is sam


def test_trained_adapter_adds_its_low_rank_term_and_can_be_disabled():
    sam = make_tiny_sam()
    before, hidden = iou_head_scores(sam)
    adapter = IoUAdapter.for_sam(sam, rank=2, scale=0.5)
    torch.nn.init.normal_(adapter.up.weight)
    adapter.attach(sam)
    layer = sam.mask_decoder.iou_prediction_head.layers[-1]
    expected = before + 0.5 * hidden @ adapter.down.weight.T @ adapter.up.weight.T
    assert torch.allclose(layer(hidden), expected, atol=1e-6)
    with adapter.disabled():
        assert torch.equal(layer(hidden), before)
    assert IoUAdapter.detach(sam) is adapter
    assert torch.equal(sam.mask_decoder.iou_prediction_head.layers[-1](hidden), before)


def test_attaching_twice_is_refused():
    sam = make_tiny_sam()
    IoUAdapter.for_sam(sam).attach(sam)
    with pytest.raises(ValueError, match='already carries'):
        IoUAdapter.for_sam(sam).attach(sam)


def test_file_round_trip_is_small_and_exact(tmp_path):
    sam = make_tiny_sam()
    adapter = IoUAdapter.for_sam(sam, rank=4, scale=2.0)
    torch.nn.init.normal_(adapter.up.weight)
    path = tmp_path / 'iou_adapter.pth'
    adapter.save(str(path))
    assert path.stat().st_size < 10_000
    loaded = IoUAdapter.load(str(path))
    assert (loaded.rank, loaded.scale) == (4, 2.0)
    assert loaded.signature == adapter.signature
    for name, value in adapter.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)


def test_adapter_of_another_architecture_is_refused(tmp_path):
    path = str(tmp_path / 'iou_adapter.pth')
    IoUAdapter.for_sam(make_tiny_sam()).save(path)
    deeper = build_sam_model(dict(TINY_SAM_ARCH, depth=3, global_attn_indexes=(2,)))
    with pytest.raises(ValueError, match=r'another SAM architecture '
                       r'\(encoder_params: adapter 63136 vs SAM 76064\)'):
        IoUAdapter.load(path).attach(deeper)


def test_bad_adapter_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='no IoU adapter file'):
        IoUAdapter.load(str(tmp_path / 'missing.pth'))
    path = tmp_path / 'sam.pth'
    torch.save(make_tiny_sam().state_dict(), path)
    with pytest.raises(ValueError, match='not an IoU adapter file'):
        IoUAdapter.load(str(path))


def test_refiner_loads_an_adapter_and_its_scores_change_by_its_term(tmp_path, scene):
    image, masks = scene
    sam = make_tiny_sam()
    adapter = IoUAdapter.for_sam(sam)
    torch.nn.init.normal_(adapter.up.weight, std=0.5)
    path = str(tmp_path / 'iou_adapter.pth')
    adapter.save(path)

    plain = SAMRefiner(make_tiny_sam(), iters=1)
    adapted = SAMRefiner(make_tiny_sam(), iters=1, iou_adapter=dict(checkpoint=path))
    assert 'iou_adapter=IoUAdapter(' in repr(adapted)
    embedding = plain.encode_image(image)
    prompts = plain.mine_prompts(masks)
    _, plain_ious = plain.decode(prompts, embedding)
    _, adapted_ious = adapted.decode(prompts, embedding)
    assert not torch.allclose(plain_ious, adapted_ious)
    layer = adapted.sam.mask_decoder.iou_prediction_head.layers[-1]
    with layer.adapter.disabled():
        assert torch.allclose(adapted.decode(prompts, embedding)[1], plain_ious)
    # The refiner keeps the candidate the adapted head ranks first.
    assert adapted.refine(image, masks).scores.tolist() == pytest.approx(
        adapted_ious.max(1).values.tolist(), abs=1e-5)


def test_refiner_refuses_a_bad_iou_adapter_setting():
    with pytest.raises(TypeError, match='iou_adapter must be'):
        SAMRefiner(make_tiny_sam(), iou_adapter=dict(path='x.pth'))
