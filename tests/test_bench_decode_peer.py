"""The DeepSeek-V3 peer of ``benchmarks/bench_decode_peer.py`` really runs the same weights:
transformers' MTP layer, given Omni's MTP weights, computes what Omni's MTP module computes, and
transformers' ``generate(use_mtp=True)`` answers as plain greedy does."""

import sys
from pathlib import Path
from unittest import mock

import torch
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import MtpModel

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from bench_decode_peer import deepseek_pipeline, transformers_mtp  # noqa: E402


def test_transformers_mtp_layer_with_omnis_weights_computes_omnis_mtp_states():
    model = deepseek_pipeline(layers=2, seed=0).model
    peer = transformers_mtp(model)
    torch.manual_seed(1)
    hidden, ids = torch.randn(1, 5, 64), torch.randint(0, 300, (1, 5))
    positions = torch.arange(5).unsqueeze(0)
    embeds = model.get_input_embeddings()(ids)
    with torch.no_grad():
        ours, _ = model.mtp(hidden, embeds, position_ids=positions)
        mask = create_causal_mask(
            config=peer.config,
            inputs_embeds=embeds,
            attention_mask=None,
            cache=None,
            position_ids=positions,
        )
        rotary = peer.rotary_emb(embeds, positions)
        theirs = peer.layers[0](embeds, hidden, rotary, mask, positions, None)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(ours, hidden, atol=1e-2)  # the layer does something


def test_transformers_mtp_generate_equals_greedy_on_the_micro_deepseek():
    pipe = deepseek_pipeline(layers=2, seed=0)
    peer = transformers_mtp(pipe.model)
    ids = torch.randint(0, 300, (1, 12))
    common = dict(max_new_tokens=10, min_new_tokens=10, do_sample=False, pad_token_id=0)
    with torch.no_grad(), mock.patch.object(MtpModel, "from_pretrained", lambda *a, **k: peer):
        plain = pipe.model.backbone.generate(input_ids=ids, **common)
        drafted = pipe.model.backbone.generate(input_ids=ids, use_mtp=True, **common)
    assert torch.equal(plain, drafted)
