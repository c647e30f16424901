# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAM's ViT attention through SDPA: the same function as the model's own
module (windowed and global blocks, non-square grids, windows that pad), the
same state dict, installed and removed in place, refused where there is no
ViT attention, and the refiner's masks unchanged."""
import numpy as np
import pytest
import torch
from segment_anything.modeling.image_encoder import Attention

from mmsamrefiner import SAMRefiner
from mmsamrefiner.evaluation import mask_iou
from mmsamrefiner.refiner.sam import build_sam, build_sam_model
from mmsamrefiner.refiner.sdpa_attention import (
    SDPAAttention,
    encoder_attention_of,
    relative_position_bias,
    relative_position_table,
    set_encoder_attention,
)
from tests._families import needs_hq
from tests.tiny_models import TINY_SAM_ARCH


def randomize_rel_pos(model: torch.nn.Module, seed: int = 1) -> None:
    """SAM initialises the relative-position tables with zeros: random ones
    make the bias matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if 'rel_pos' in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))


def tiny_vit_sam(seed: int = 0, **arch):
    torch.manual_seed(seed)
    sam = build_sam_model(dict(TINY_SAM_ARCH, **arch))
    randomize_rel_pos(sam)
    return sam


def test_relative_position_table_holds_the_embedding_of_each_offset():
    rel_pos = torch.arange(5.0)[:, None].repeat(1, 2)  # row r: the offset r - 2
    table = relative_position_table(rel_pos, 3)
    assert table.shape == (3, 3, 2)
    offsets = torch.arange(3)[:, None] - torch.arange(3)[None, :]
    torch.testing.assert_close(table[..., 0], (offsets + 2).float())
    with pytest.raises(ValueError, match='5 rows does not fit 4 tokens .* needs 7'):
        relative_position_table(rel_pos, 4)


def test_bias_of_a_hand_made_query():
    # one head, one query channel of 1 everywhere: bias = Rh[y - y'] + Rw[x - x']
    rel_pos_h = torch.tensor([[10.0], [20.0], [30.0]])  # offsets -1, 0, 1
    rel_pos_w = torch.tensor([[1.0], [2.0], [3.0]])
    q = torch.ones(1, 1, 4, 1)  # a 2x2 grid
    bias = relative_position_bias(q, rel_pos_h, rel_pos_w, (2, 2))[0, 0]
    # query (0, 0) to keys (0, 0), (0, 1), (1, 0), (1, 1): offsets (0,0), (0,-1), (-1,0), (-1,-1)
    assert bias[0].tolist() == [22.0, 21.0, 12.0, 11.0]
    # query (1, 1) to key (0, 0): offset (1, 1)
    assert bias[3, 0].item() == 33.0


@pytest.mark.parametrize('grid', [(3, 5), (4, 4), (7, 2)])
@pytest.mark.parametrize('use_rel_pos', [True, False])
def test_sdpa_attention_equals_the_models_own(grid, use_rel_pos):
    torch.manual_seed(0)
    eager = Attention(24, num_heads=3, use_rel_pos=use_rel_pos, input_size=grid)
    randomize_rel_pos(eager)
    sdpa = SDPAAttention(eager)
    tokens = torch.randn(2, *grid, 24)
    with torch.no_grad():
        expected, got = eager(tokens), sdpa(tokens)
    assert got.shape == expected.shape == (2, *grid, 24)
    assert (got - expected).abs().max() < 1e-5


@pytest.mark.parametrize('arch', [
    dict(),  # windows of 4 on the 8x8 grid (block 0) and a global block (block 1)
    dict(window_size=3),  # windows that pad the grid (8 is no multiple of 3)
    dict(depth=3, global_attn_indexes=(0, 2)),
], ids=['window-4', 'window-3-padded', 'two-global'])
def test_encoder_output_equals_eager_in_float32(arch):
    sam = tiny_vit_sam(**arch)
    pixels = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        expected = sam.image_encoder(pixels)
        assert set_encoder_attention(sam.image_encoder, 'sdpa') == len(sam.image_encoder.blocks)
        got = sam.image_encoder(pixels)
    assert (got - expected).abs().max() < 1e-4


def test_state_dict_and_parameters_are_shared_and_eager_comes_back():
    sam = tiny_vit_sam()
    before = {k: v.clone() for k, v in sam.state_dict().items()}
    originals = [block.attn for block in sam.image_encoder.blocks]
    set_encoder_attention(sam.image_encoder, 'sdpa')
    assert encoder_attention_of(sam.image_encoder) == 'sdpa'
    after = sam.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    for block, original in zip(sam.image_encoder.blocks, originals):
        assert isinstance(block.attn, SDPAAttention)
        assert block.attn.qkv is original.qkv and block.attn.rel_pos_h is original.rel_pos_h
    assert set_encoder_attention(sam.image_encoder, 'sdpa') == 0  # already so
    assert set_encoder_attention(sam.image_encoder, 'eager') == len(originals)
    assert [block.attn for block in sam.image_encoder.blocks] == originals
    assert encoder_attention_of(sam.image_encoder) == 'eager'


def test_refiner_masks_with_sdpa_equal_eager(scene):
    image, masks = scene  # 96x120: padded to the encoder's square
    sam = tiny_vit_sam()
    eager = SAMRefiner(sam, iters=2).refine(image, masks)
    sdpa = SAMRefiner(sam, iters=2, encoder_attention='sdpa').refine(image, masks)
    assert mask_iou(sdpa.masks, eager.masks).min() >= 0.99
    np.testing.assert_allclose(sdpa.scores, eager.scores, atol=1e-4)


def test_sdpa_under_bfloat16_autocast_stays_close_to_eager(scene):
    image, _ = scene
    sam = tiny_vit_sam()
    eager = SAMRefiner(sam, encoder_dtype='bfloat16').encode_image(image).embedding
    sdpa = SAMRefiner(sam, encoder_dtype='bfloat16',
                      encoder_attention='sdpa').encode_image(image).embedding
    assert sdpa.dtype == torch.float32
    assert (sdpa - eager).abs().max() < 0.05 * eager.abs().max()


def test_refiners_sharing_a_sam_each_encode_with_their_own_attention(scene):
    image, _ = scene
    sam = tiny_vit_sam()
    sdpa = SAMRefiner(sam, encoder_attention='sdpa')
    eager = SAMRefiner(sam)  # puts SAM's own attention back
    assert encoder_attention_of(sam.image_encoder) == 'eager'
    sdpa.encode_image(image)
    assert encoder_attention_of(sam.image_encoder) == 'sdpa'
    eager.encode_image(image)
    assert encoder_attention_of(sam.image_encoder) == 'eager'


def test_attention_and_compile_leave_the_fingerprint():
    sam = tiny_vit_sam()
    base = SAMRefiner(sam)
    sdpa = SAMRefiner(sam, encoder_attention='sdpa')
    compiled = SAMRefiner(sam, compile_encoder=True)  # compiles on first use only
    assert sdpa.result_settings() == base.result_settings() == compiled.result_settings()
    assert sdpa.fingerprint() == base.fingerprint() == compiled.fingerprint()


def test_unknown_attention_and_sdpa_without_vit_blocks_are_refused():
    with pytest.raises(ValueError, match=r"encoder_attention must be one of \('eager', 'sdpa'\)"):
        SAMRefiner(tiny_vit_sam(), encoder_attention='flash')
    toy = build_sam('toy')  # a convolutional encoder
    with pytest.raises(ValueError, match="'sdpa' replaces the attention of SAM's ViT .*"
                                         'ConvImageEncoder has no such blocks'):
        SAMRefiner(toy, encoder_attention='sdpa')
    SAMRefiner(toy)  # 'eager' is fine everywhere
    with pytest.raises(TypeError, match='replaces the attention of SAM'):
        SDPAAttention(torch.nn.Linear(2, 2))


@needs_hq
def test_hq_sam_vit_encoder_with_sdpa_equals_eager():
    torch.manual_seed(0)
    sam = build_sam(TINY_SAM_ARCH, family='hq')
    randomize_rel_pos(sam)
    pixels = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        expected, expected_interm = sam.image_encoder(pixels)
        set_encoder_attention(sam.image_encoder, 'sdpa')
        got, got_interm = sam.image_encoder(pixels)
    assert (got - expected).abs().max() < 1e-4
    assert (got_interm[0] - expected_interm[0]).abs().max() < 1e-4


def test_encoder_with_sdpa_compiles_in_one_graph(scene):
    """Dynamo traces the SDPA encoder without graph breaks (the eager backend:
    no code generation, so it runs in seconds)."""
    image, _ = scene
    sam = tiny_vit_sam()
    expected = SAMRefiner(sam).encode_image(image).embedding
    refiner = SAMRefiner(sam, encoder_attention='sdpa')
    refiner.backend.compile_encoder(backend='eager', fullgraph=True)
    got = refiner.encode_image(image).embedding
    assert (got - expected).abs().max() < 1e-4


@pytest.mark.slow
def test_compiled_encoder_gives_the_eager_embedding(scene):
    """``compile_encoder=True`` (inductor, C++ code generation on the CPU:
    about a minute on a 2-core CPU): the same embedding."""
    image, _ = scene
    sam = tiny_vit_sam()
    expected = SAMRefiner(sam).encode_image(image).embedding
    compiled = SAMRefiner(sam, encoder_attention='sdpa', compile_encoder=True)
    assert compiled.backend.compiled_encoder is not None
    got = compiled.encode_image(image).embedding
    assert (got - expected).abs().max() < 1e-4
