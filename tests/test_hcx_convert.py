"""``omni convert hcx-omni``: a synthetic micro checkpoint in the official unified layout (the
prefixes and config fields OmniServe's ``model_converter`` reads, see ``omni/hcx_convert.py``)
converts its language model faithfully and names every part it skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from micro_backbones import TEXT_VOCAB, write_backbone
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from omni.cli import main
from omni.hcx_convert import convert_hcx_omni
from omni.pipeline import OmniPipeline

# One small tensor under each prefix the official checkpoint has besides the language model.
OTHER_PARTS = {
    "model.vision_model.blocks.0.attn.qkv.weight": (48, 16),
    "model.mm_projector.linear_1.weight": (64, 16),
    "model.discrete_vision_model.bottleneck.regularizer.codebook.weight": (32, 8),
    "model.audio_model.layers.0.self_attn.q_proj.weight": (16, 16),
    "model.audio_projector.linear_1.weight": (64, 16),
    "model.discrete_audio_model.quantizer.project_in.weight": (8, 16),
    "model.video_audio_compressor.layers.0.mixer.in_proj.weight": (32, 16),
}


def write_unified(folder: Path, llm: Path) -> Path:
    """The micro LLM's tensors under ``model.language_model.``, the other parts beside them,
    one sharded index, and a config with ``text_config`` / ``vision_config`` / ``audio_config``."""
    folder.mkdir()
    index = json.loads((llm / "model.safetensors.index.json").read_text())["weight_map"]
    weight_map = {}
    for shard in sorted(set(index.values())):
        with safe_open(llm / shard, framework="pt") as handle:
            tensors = {f"model.language_model.{n}": handle.get_tensor(n) for n in handle.keys()}
        save_file(tensors, folder / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard))
    others = {name: torch.randn(shape) for name, shape in OTHER_PARTS.items()}
    save_file(others, folder / "model-extra.safetensors", metadata={"format": "pt"})
    weight_map.update(dict.fromkeys(others, "model-extra.safetensors"))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}  # as OmniServe reads it
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    text_config = json.loads((llm / "config.json").read_text())
    text_config.pop("architectures")
    config = {
        "text_config": text_config,
        "vision_config": {"model_type": "qwen2_5_vl"},
        "audio_config": {"model_type": "qwen2_audio_encoder", "num_mel_bins": 128},
    }
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).write_bytes((llm / name).read_bytes())
    (folder / "vision_decoder").mkdir()
    return folder


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("hcx")
    llm = write_backbone(root / "llm", "hyperclovax", seed=4)
    unified = write_unified(root / "unified", llm)
    report = convert_hcx_omni(unified, root / "omni")
    return llm, root / "omni", report


def test_the_language_model_converts_with_the_sources_text_predictions(converted):
    llm, out, _ = converted
    source = AutoModelForCausalLM.from_pretrained(llm).eval()
    pipeline = OmniPipeline.from_pretrained(out)
    ids = torch.randint(0, TEXT_VOCAB, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = source(ids).logits
        got = pipeline.model(input_ids=ids).logits[..., :TEXT_VOCAB]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert pipeline.generate("hello", max_new_tokens=4).tokens


def test_the_report_names_every_skipped_part(converted):
    _, _, report = converted
    assert report[0].startswith("converted: language model")
    skipped = [line for line in report if line.startswith("skipped:")]
    for prefix in {name.split(".")[1] for name in OTHER_PARTS}:
        assert any(f"model.{prefix}.*" in line for line in skipped), prefix
    assert any("vision_decoder/" in line for line in skipped)


def test_a_folder_that_is_not_the_unified_layout_is_refused(tmp_path, capsys):
    llm = write_backbone(tmp_path / "llm", "llama")
    with pytest.raises(ValueError, match="text_config with model_type 'hyperclovax'"):
        convert_hcx_omni(llm, tmp_path / "out")
    assert main(["convert", "hcx-omni", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err
