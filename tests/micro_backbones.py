"""Micro pretrained-backbone folders, written by the tests themselves (nothing is downloaded):
a transformers causal LM of a real ``model_type`` saved in sharded safetensors with its index,
a trained byte-level BPE with its own chat template, and for ``exaone_moe`` the release's MTP
tensors (``mtp.*``, the names vLLM's ``exaone_moe_mtp.py`` reads; see ``omni/release_mtp.py``)
in a shard of their own, listed in the index as the release lists them."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from omni.presets import backbone_config
from tokenizers_mm.text import micro_corpus, train_bpe

PRESETS = {
    "exaone_moe": "micro-k-exaone",
    "solar_open": "micro-solar-open",
    "hyperclovax": "micro-hcx-omni",
    "llama": "micro-llama",
}
BACKBONE_TEMPLATE = (
    "{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)
TEXT_VOCAB = 320


def write_backbone(
    folder: Path,
    model_type: str,
    seed: int = 0,
    extra_rows: int = 0,
    added_tokens: tuple[str, ...] = (),
) -> Path:
    """A micro ``model_type`` checkpoint in ``folder``; ``extra_rows`` pads the embedding past
    the tokenizer, as some releases do; ``added_tokens`` follow the BPE's ``TEXT_VOCAB`` ids
    (with embedding rows of their own, as a release's code tokens have)."""
    tokenizer = train_bpe(micro_corpus(), TEXT_VOCAB)
    tokenizer.add_tokens(list(added_tokens))
    tokenizer.chat_template = BACKBONE_TEMPLATE
    config = backbone_config(PRESETS[model_type], vocab_size=len(tokenizer) + extra_rows)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, max_shard_size="100KB")
    tokenizer.save_pretrained(folder)
    if model_type == "exaone_moe":
        write_release_mtp(folder, config, seed)
    return folder


def release_mtp_tensors(config, seed: int) -> dict[str, torch.Tensor]:
    """Random tensors under the K-EXAONE release's MTP names, with the release's shapes: a dense
    decoder layer of ``intermediate_size`` and ``fc`` over ``cat([embedding, hidden])``."""
    generator = torch.Generator().manual_seed(seed + 1)
    hidden, head = config.hidden_size, config.head_dim
    q, kv = config.num_attention_heads * head, config.num_key_value_heads * head
    ffn = config.intermediate_size
    shapes = {
        "mtp.fc.weight": (hidden, 2 * hidden),
        "mtp.pre_fc_norm_hidden.weight": (hidden,),
        "mtp.pre_fc_norm_embedding.weight": (hidden,),
        "mtp.norm.weight": (hidden,),
        "mtp.layers.0.input_layernorm.weight": (hidden,),
        "mtp.layers.0.post_attention_layernorm.weight": (hidden,),
        "mtp.layers.0.self_attn.q_proj.weight": (q, hidden),
        "mtp.layers.0.self_attn.k_proj.weight": (kv, hidden),
        "mtp.layers.0.self_attn.v_proj.weight": (kv, hidden),
        "mtp.layers.0.self_attn.o_proj.weight": (hidden, q),
        "mtp.layers.0.self_attn.q_norm.weight": (head,),
        "mtp.layers.0.self_attn.k_norm.weight": (head,),
        "mtp.layers.0.mlp.gate_proj.weight": (ffn, hidden),
        "mtp.layers.0.mlp.up_proj.weight": (ffn, hidden),
        "mtp.layers.0.mlp.down_proj.weight": (hidden, ffn),
    }
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def write_release_mtp(folder: Path, config, seed: int) -> dict[str, torch.Tensor]:
    tensors = release_mtp_tensors(config, seed)
    save_file(tensors, folder / "model-mtp.safetensors", metadata={"format": "pt"})
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"].update(dict.fromkeys(tensors, "model-mtp.safetensors"))
    index_path.write_text(json.dumps(index, indent=2))
    config_path = folder / "config.json"
    config_json = json.loads(config_path.read_text())
    config_json["num_nextn_predict_layers"] = 1  # as the release's config.json
    config_path.write_text(json.dumps(config_json, indent=2))
    return tensors
