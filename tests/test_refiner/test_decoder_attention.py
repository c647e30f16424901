# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The mask decoder's attention through the fused kernel: the same function
as SAM's own module, switched per refiner."""
import numpy as np
import pytest
import torch
from segment_anything.modeling.transformer import Attention

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.decoder_attention import (
    decoder_attention_sites,
    sdpa_forward,
    set_decoder_attention,
)


@pytest.mark.parametrize('downsample_rate,queries,keys', [(1, 7, 7), (2, 7, 64), (2, 64, 7)])
def test_sdpa_forward_equals_the_modules_own(downsample_rate, queries, keys):
    torch.manual_seed(0)
    attention = Attention(32, num_heads=4, downsample_rate=downsample_rate)
    q, k, v = torch.randn(3, queries, 32), torch.randn(3, keys, 32), torch.randn(3, keys, 32)
    torch.testing.assert_close(sdpa_forward(attention, q, k, v), attention(q, k, v),
                               rtol=1e-5, atol=1e-5)


def test_sites_are_the_two_way_transformers_attention_and_switch_both_ways(tiny_sam):
    sites = decoder_attention_sites(tiny_sam)
    # per block: self, token->image, image->token; then the final token->image
    assert len(sites) == 3 * len(tiny_sam.mask_decoder.transformer.layers) + 1
    assert all(isinstance(site, Attention) for site in sites)
    state = {k: v.clone() for k, v in tiny_sam.state_dict().items()}
    set_decoder_attention(sites, 'sdpa')
    assert all(site.forward.__func__ is sdpa_forward for site in sites)
    set_decoder_attention(sites, 'eager')
    assert all('forward' not in vars(site) for site in sites)
    assert all(torch.equal(v, state[k]) for k, v in tiny_sam.state_dict().items())
    assert decoder_attention_sites(torch.nn.Linear(2, 2)) == []
    with pytest.raises(ValueError, match='decoder_attention'):
        SAMRefiner(tiny_sam, decoder_attention='flash')


def test_refiners_sharing_a_sam_each_decode_their_way(tiny_sam, scene):
    image, masks = scene
    fused = SAMRefiner(tiny_sam)  # the default
    eager = SAMRefiner(tiny_sam, decoder_attention='eager')
    assert fused.decoder_attention == 'sdpa'
    assert fused.result_settings() == eager.result_settings()
    embedding = fused.encode_image(image)
    prompts = fused.mine_prompts(masks, embedding)
    eager_logits, eager_ious = eager.decode(prompts, embedding)
    assert all('forward' not in vars(site) for site in eager._decoder_sites)
    fused_logits, fused_ious = fused.decode(prompts, embedding)
    assert all('forward' in vars(site) for site in fused._decoder_sites)
    torch.testing.assert_close(fused_logits, eager_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused_ious, eager_ious, rtol=1e-4, atol=1e-4)
    a = fused.refine(None, masks, image_embedding=embedding).masks
    b = eager.refine(None, masks, image_embedding=embedding).masks
    inter, union = (a & b).sum((1, 2)), (a | b).sum((1, 2))
    assert (inter / np.maximum(union, 1) >= 0.99).all()
