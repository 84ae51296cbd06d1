"""Bad backbone folders are refused with a ValueError that names the problem: the folder, its
config, shards and tokenizer are checked before any weight is read; missing tensors are named
from the load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from micro_backbones import write_backbone, write_release_mtp
from safetensors.torch import load_file, save_file
from transformers import AutoConfig

from omni import backbones
from omni.backbones import build_from_backbone
from omni.cli import main
from tokenizers_mm.text import micro_corpus, train_bpe


def drop_tensor(folder: Path, name: str) -> None:
    """Remove one tensor from its shard and from the index, as a truncated download would."""
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = folder / index["weight_map"].pop(name)
    tensors = load_file(shard)
    del tensors[name]
    save_file(tensors, shard, metadata={"format": "pt"})
    index_path.write_text(json.dumps(index))


@pytest.fixture
def no_weight_loading(monkeypatch):
    """Fails the test if the backbone's weights are loaded: the error must come first."""

    def refuse(folder):
        raise AssertionError(f"weights of {folder} were loaded before the input was checked")

    monkeypatch.setattr(backbones, "_load_source", refuse)


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        build_from_backbone(tmp_path)


def test_an_unknown_backbone_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt-9000"}))
    with pytest.raises(ValueError, match="unknown backbone type 'gpt-9000'"):
        build_from_backbone(tmp_path)


def test_a_folder_that_is_not_a_causal_lm_is_refused(tmp_path):
    config = {"model_type": "vit", "architectures": ["ViTModel"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="is not a causal LM"):
        build_from_backbone(tmp_path)


def test_an_encoder_only_architecture_of_a_causal_type_is_refused(tmp_path):
    folder = write_backbone(tmp_path / "llama", "llama")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LlamaForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="is not a causal LM"):
        build_from_backbone(folder)


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path, no_weight_loading):
    folder = write_backbone(tmp_path / "llama", "llama")
    train_bpe(micro_corpus(), 400).save_pretrained(folder)
    with pytest.raises(ValueError, match="400 tokens but the embedding has only 320 rows"):
        build_from_backbone(folder)


def test_a_checkpoint_missing_backbone_tensors_is_refused(tmp_path):
    folder = write_backbone(tmp_path / "solar", "solar_open")
    drop_tensor(folder, "model.norm.weight")
    with pytest.raises(
        ValueError, match=r"lacks 1 tensors the backbone needs.*model\.norm\.weight"
    ):
        build_from_backbone(folder)


def test_a_missing_shard_is_refused(tmp_path, no_weight_loading):
    folder = write_backbone(tmp_path / "llama", "llama")
    next(folder.glob("model-00002-*.safetensors")).unlink()
    with pytest.raises(ValueError, match="missing the shard model-00002"):
        build_from_backbone(folder)


def test_release_mtp_tensors_missing_a_part_are_refused(tmp_path, no_weight_loading):
    folder = write_backbone(tmp_path / "exaone", "exaone_moe")
    drop_tensor(folder, "mtp.norm.weight")
    with pytest.raises(ValueError, match=r"MTP tensors .* lack \['block.norm.weight'\]"):
        build_from_backbone(folder)


def test_mtp_tensors_of_a_layout_omni_does_not_know_are_refused(tmp_path):
    folder = write_backbone(tmp_path / "llama", "llama")
    write_release_mtp(folder, AutoConfig.from_pretrained(folder), seed=0)
    with pytest.raises(ValueError, match="knows no MTP layout for 'llama'"):
        build_from_backbone(folder)
    assert build_from_backbone(folder, mtp_layers=0).model.mtp is None


def test_a_release_with_more_mtp_layers_than_omnis_one_is_refused(tmp_path, no_weight_loading):
    folder = write_backbone(tmp_path / "exaone", "exaone_moe")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_nextn_predict_layers": 2}))
    with pytest.raises(ValueError, match="has 2 MTP layers; Omni's MTP module is depth 1"):
        build_from_backbone(folder)


def test_the_build_command_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["build", "--backbone", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
