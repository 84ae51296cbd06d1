"""Omni built on pretrained backbones: micro exaone_moe / solar_open / hyperclovax / llama folders
(sharded safetensors, a trained BPE, the release's MTP tensors for exaone_moe) extend into Omni
models whose text predictions are the source's, and the built folder trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from micro_backbones import TEXT_VOCAB, release_mtp_tensors, write_backbone
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

import omni
from omni.backbones import build_from_backbone, build_pipeline
from omni.chat_template import CHAT_TEMPLATE
from omni.cli import main
from omni.modeling import OmniForConditionalGeneration
from omni.pipeline import OmniPipeline

MODEL_TYPES = ["exaone_moe", "solar_open", "hyperclovax", "llama"]


@pytest.fixture(scope="module", params=MODEL_TYPES)
def backbone(request, tmp_path_factory) -> Path:
    return write_backbone(tmp_path_factory.mktemp(request.param), request.param)


def text_ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, TEXT_VOCAB, (2, 16), generator=torch.Generator().manual_seed(seed))


def test_the_micro_folders_are_sharded_with_an_index(backbone):
    index = json.loads((backbone / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2


def test_text_logits_equal_the_source_models(backbone):
    source = AutoModelForCausalLM.from_pretrained(backbone).eval()
    model = OmniForConditionalGeneration.from_backbone(backbone)
    ids = text_ids()
    with torch.no_grad():
        expected = source(ids).logits
        got = model(input_ids=ids).logits
    assert got.shape[-1] == model.layout.total_size > TEXT_VOCAB
    torch.testing.assert_close(got[..., :TEXT_VOCAB], expected, atol=1e-5, rtol=0)


def test_appended_rows_start_at_the_text_rows_mean(backbone):
    model = OmniForConditionalGeneration.from_backbone(backbone)
    weight = model.get_input_embeddings().weight.detach()
    text, added = weight[:TEXT_VOCAB], weight[TEXT_VOCAB:]
    torch.testing.assert_close(added, text.mean(0).expand_as(added), atol=1e-3, rtol=0)
    assert (
        model.config.backbone_config.model_type == AutoConfig.from_pretrained(backbone).model_type
    )


def test_the_tokenizer_stays_the_text_block_with_omnis_chat_template(backbone):
    built = build_from_backbone(backbone)
    tokenizer, layout = built.tokenizer, built.model.layout
    assert layout.text_size == TEXT_VOCAB
    assert tokenizer.convert_tokens_to_ids("<|assistant|>") == layout.role_id("assistant")
    assert tokenizer.chat_template["default"] == CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], chat_template="backbone", tokenize=False
    )
    assert rendered == "[user]hi\n"


def test_the_pipeline_folder_round_trips(backbone, tmp_path):
    pipeline, _ = build_pipeline(backbone)
    pipeline.save_pretrained(tmp_path / "omni")
    loaded = OmniPipeline.from_pretrained(tmp_path / "omni")
    special = loaded.layout.range_of("special")
    ids = text_ids(1)
    with torch.no_grad():
        before, after = pipeline.model(input_ids=ids).logits, loaded.model(input_ids=ids).logits
    assert torch.equal(before, after)
    assert loaded.tokenizer.chat_template["default"] == CHAT_TEMPLATE
    plain = loaded.generate("hello", max_new_tokens=6, speculative=False)
    assert plain.tokens and all(t < TEXT_VOCAB or t in special for t in plain.tokens)
    # Self-speculation drafts with the MTP head (the release's, for exaone_moe); greedy, it
    # must give the plain answer.
    assert loaded.generate("hello", max_new_tokens=6, speculative=True).tokens == plain.tokens
    in_bf16 = omni.load(tmp_path / "omni", dtype="bfloat16")
    assert in_bf16.model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert in_bf16.generate("hello", max_new_tokens=3).tokens


def test_exaone_release_mtp_weights_load_into_omnis_mtp(tmp_path):
    folder = write_backbone(tmp_path / "exaone", "exaone_moe", seed=3)
    config = AutoConfig.from_pretrained(folder)
    release = release_mtp_tensors(config, seed=3)
    mtp = OmniForConditionalGeneration.from_backbone(folder).mtp
    state = mtp.state_dict()
    for name, omni_name in [
        ("mtp.pre_fc_norm_hidden.weight", "hidden_norm.weight"),
        ("mtp.pre_fc_norm_embedding.weight", "embed_norm.weight"),
        ("mtp.norm.weight", "block.norm.weight"),
        ("mtp.layers.0.self_attn.q_proj.weight", "block.layers.0.self_attn.q_proj.weight"),
        ("mtp.layers.0.mlp.down_proj.weight", "block.layers.0.mlp.down_proj.weight"),
    ]:
        assert torch.equal(state[omni_name], release[name]), name
    # The release projects cat([embedding, hidden]); Omni's proj over cat([hidden, embedding])
    # must give the same fused state.
    hidden, embeds = torch.randn(1, 5, config.hidden_size), torch.randn(1, 5, config.hidden_size)
    with torch.no_grad():
        omni_fused = mtp.proj(torch.cat([mtp.hidden_norm(hidden), mtp.embed_norm(embeds)], -1))
        released = torch.cat([mtp.embed_norm(embeds), mtp.hidden_norm(hidden)], -1)
        torch.testing.assert_close(omni_fused, released @ release["mtp.fc.weight"].T)


def test_a_loaded_model_is_extended_with_the_tokenizer_given(backbone):
    source = AutoModelForCausalLM.from_pretrained(backbone).eval()
    ids = text_ids(3)
    with torch.no_grad():
        expected = source(ids).logits
    with pytest.raises(ValueError, match="needs its tokenizer"):
        build_from_backbone(source)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = OmniForConditionalGeneration.from_backbone(source, tokenizer=tokenizer)
    with torch.no_grad():
        got = model(input_ids=ids).logits[..., :TEXT_VOCAB]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_a_bf16_checkpoint_builds_in_its_stored_dtype(tmp_path):
    folder = write_backbone(tmp_path / "fp32", "exaone_moe")
    AutoModelForCausalLM.from_pretrained(folder).to(torch.bfloat16).save_pretrained(
        tmp_path / "bf16", max_shard_size="100KB"
    )
    AutoTokenizer.from_pretrained(folder).save_pretrained(tmp_path / "bf16")
    source = AutoModelForCausalLM.from_pretrained(tmp_path / "bf16", dtype="auto").eval()
    model = OmniForConditionalGeneration.from_backbone(tmp_path / "bf16")
    kept_fp32 = {f"backbone.{n}" for n, p in source.named_parameters() if p.dtype == torch.float32}
    assert kept_fp32  # transformers keeps the MoE router in fp32 (_keep_in_fp32_modules)
    assert {n for n, p in model.named_parameters() if p.dtype != torch.bfloat16} == kept_fp32
    ids = text_ids(4)
    with torch.no_grad():
        expected = source(ids).logits
        got = model(input_ids=ids).logits[..., :TEXT_VOCAB]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_padding_rows_past_the_tokenizer_are_dropped(tmp_path):
    folder = write_backbone(tmp_path / "padded", "llama", extra_rows=16)
    source = AutoModelForCausalLM.from_pretrained(folder).eval()
    built = build_from_backbone(folder)
    ids = text_ids(2)
    with torch.no_grad():
        expected = source(ids).logits[..., :TEXT_VOCAB]
        got = built.model(input_ids=ids).logits[..., :TEXT_VOCAB]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert any("dropped 16 padding rows" in line for line in built.report)


def test_omni_build_command_writes_a_folder_a_curriculum_stage_trains_from(tmp_path):
    from training.toyworld import generate

    source = write_backbone(tmp_path / "hcx", "hyperclovax")
    built = tmp_path / "omni"
    assert main(["build", "--backbone", str(source), "--out", str(built)]) == 0
    world = generate(tmp_path / "world", 12, seed=5, tasks=["translate"], progress=False)
    stage = {
        "name": "sft-1-conversation",
        "mixture": [{"manifest": "toyworld", "split": "train"}],
        "trainable": ["embeddings", "backbone", "mtp"],
        "sequence_length": 128,
        "rows_per_step": 2,
        "micro_rows": 1,
        "warmup_steps": 1,
        "steps": 2,
        "lr": 3e-3,
    }
    (tmp_path / "stage.yaml").write_text(yaml.safe_dump(stage))
    curriculum = {"model": {}, "manifests": {"toyworld": str(world)}, "stages": ["stage.yaml"]}
    (tmp_path / "curriculum.yaml").write_text(yaml.safe_dump(curriculum))
    out = tmp_path / "run"
    argv = ["train", "lm", "--recipe", str(tmp_path / "curriculum.yaml"), "--init", str(built)]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    before = load_file(built / "model.safetensors")
    after = load_file(out / "sft-1-conversation" / "final" / "model.safetensors")
    name = "backbone.model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(before[name], after[name])
