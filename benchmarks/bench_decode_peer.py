"""Omni's MTP speculative decoding against transformers' own, ``generate(use_mtp=True)``.

transformers (5.24) drafts with the MTP layers of backbones whose config has ``num_mtp_layers``
(``MTPCandidateGenerator`` over ``MtpModel``); ``exaone_moe`` and ``solar_open`` are not among
them, DeepSeek-V3 is. So this runs on a micro ``deepseek_v3`` backbone with one MTP layer: an
Omni model over it (trained briefly on the toy world's translation, as in ``bench_decode.py``),
and transformers' ``MtpModel`` for the same backbone carrying the same MTP weights, copied from
Omni's module (names mapped; transformers concatenates ``[embedding, hidden]`` where Omni
concatenates ``[hidden, embedding]``, so the projection's halves swap). ``MtpModel`` normally
reads those weights from the checkpoint folder; here its loader is replaced by that copy, the
only thing changed in transformers' path. Arms in turn, figures as ratios to ``generate()``:

- ``hf_generate``, ``hf_generate_mtp`` (``use_mtp=True``), ``omni_plain``, ``omni_k1`` ..
  ``omni_k4``, ``omni_auto``; every arm's greedy answer must equal ``hf_generate``'s.

    .venv/bin/python benchmarks/bench_decode_peer.py [--smoke]
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from unittest import mock

import torch
from decode_arms import arms, in_turn, prompts_for  # beside this script
from transformers import AutoConfig
from transformers.modeling_layers import MtpModel

from omni.config import OmniConfig
from omni.modeling import OmniForConditionalGeneration
from omni.pipeline import OmniPipeline
from omni.speculation import SpeculationPolicy
from omni.vocab import VocabLayout

MICRO_DEEPSEEK = dict(
    hidden_size=64,
    intermediate_size=192,
    moe_intermediate_size=32,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=4,
    n_routed_experts=8,
    n_shared_experts=1,
    num_experts_per_tok=2,
    n_group=1,
    topk_group=1,
    first_k_dense_replace=0,  # the MTP layer is an MoE layer in both implementations
    q_lora_rank=32,
    kv_lora_rank=16,
    qk_rope_head_dim=8,
    qk_nope_head_dim=8,
    v_head_dim=16,
    max_position_embeddings=2048,
    num_mtp_layers=1,
    tie_word_embeddings=False,
)


def deepseek_pipeline(layers: int, seed: int) -> OmniPipeline:
    """A text-only Omni pipeline over a micro DeepSeek-V3 backbone with one MTP layer."""
    from tokenizers_mm.text import micro_text_tokenizer

    tokenizer = micro_text_tokenizer()
    layout = VocabLayout(
        text_size=len(tokenizer), image_codes=64, audio_codes=27, image_grid=(8, 8)
    )
    backbone = AutoConfig.for_model(
        "deepseek_v3", **{**MICRO_DEEPSEEK, "num_hidden_layers": layers}
    )
    config = OmniConfig(
        backbone_config=backbone.to_dict(), vocab_layout=layout.to_dict(), encoders={}
    )
    torch.manual_seed(seed)
    return OmniPipeline(OmniForConditionalGeneration(config).eval(), tokenizer)


def transformers_mtp(model: OmniForConditionalGeneration) -> MtpModel:
    """transformers' ``MtpModel`` for the backbone, with the weights of Omni's MTP module."""
    backbone, omni_mtp = model.backbone, model.mtp
    mtp = MtpModel(backbone, 1)
    layer, hidden = mtp.layers[0], backbone.config.hidden_size
    with torch.no_grad():
        layer.hnorm.weight.copy_(omni_mtp.hidden_norm.weight)
        layer.enorm.weight.copy_(omni_mtp.embed_norm.weight)
        weight = omni_mtp.proj.weight
        swapped = torch.cat([weight[:, hidden:], weight[:, :hidden]], dim=1)
        if getattr(mtp.config, "mtp_hidden_states_first", False):
            swapped = weight
        layer.eh_proj.weight.copy_(swapped)
        layer.mtp_block.load_state_dict(omni_mtp.block.layers[0].state_dict())
        layer.post_norm.load_state_dict(omni_mtp.block.norm.state_dict())
    return mtp.to(backbone.device, backbone.dtype).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--prompts", type=int, default=4, help="answers per arm (batch 1 each)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="2 layers, 2 steps, 8 tokens")
    parser.add_argument("--out", help="JSON figures (default: bench_decode_peer.json beside this)")
    args = parser.parse_args()
    if args.smoke:
        args.layers, args.train_steps, args.tokens, args.prompts, args.repeats = 2, 2, 8, 1, 1
    out = Path(args.out or Path(__file__).with_suffix(".json"))
    torch.set_num_threads(1)
    pipe = deepseek_pipeline(args.layers, args.seed)
    if args.train_steps:
        from training.bench_generate_cli import train_micro

        train_micro(pipe, args.train_steps, args.seed)
    peer = transformers_mtp(pipe.model)
    figures: dict = {"arguments": vars(args) | {"out": str(out)}, "prompts": []}
    carried = SpeculationPolicy()  # omni_auto's, kept over the prompts as omni.generate does
    with torch.no_grad(), mock.patch.object(MtpModel, "from_pretrained", lambda *a, **k: peer):
        for sample in prompts_for("text", args.prompts, args.seed):
            batch = pipe.processor([sample], padding_side="left", add_generation_prompt=True)
            functions = arms(pipe, batch, "text", args.tokens, [1, 2, 3, 4], carried)
            functions["hf_generate_mtp"] = partial(functions["hf_generate"], use_mtp=True)
            medians, results = in_turn(functions, args.repeats)
            baseline = results["hf_generate"][0]
            rates = {k: sum(len(a) for a in results[k][0]) / medians[k] for k in functions}
            figures["prompts"].append(
                {
                    "ratio_to_hf_generate": {
                        k: round(v / rates["hf_generate"], 3) for k, v in rates.items()
                    },
                    "identical_output": {k: results[k][0] == baseline for k in functions},
                }
            )
    arms_names = figures["prompts"][0]["ratio_to_hf_generate"]
    figures["mean_ratio_to_hf_generate"] = {
        k: round(sum(p["ratio_to_hf_generate"][k] for p in figures["prompts"]) / args.prompts, 3)
        for k in arms_names
    }
    print(json.dumps(figures, indent=1))
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
