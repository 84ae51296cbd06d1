"""One save/load scheme (``omni.common.persistence``) and one registry of kinds for every
trainable part; the folders shipped in ``assets/`` keep loading, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from decoders.base import CodeDecoder
from encoders import ContinuousEncoder, VisionEncoder
from omni.common.registry import REGISTRY, resolve
from tokenizers_mm.audio import SpeechUnitTokenizer
from tokenizers_mm.base import CodeTokenizer
from tokenizers_mm.vision import SemanticImageTokenizer

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED = {
    "tokenizers/image": CodeTokenizer,
    "tokenizers/speech": CodeTokenizer,
    "decoders/image": CodeDecoder,
    "decoders/vocoder": CodeDecoder,
}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_folders_load_and_save_back_unchanged(name, tmp_path):
    folder = ASSETS / name
    loaded = SHIPPED[name].from_pretrained(folder)
    assert not loaded.training
    loaded.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == json.loads(
        (folder / "config.json").read_text()
    )
    shipped, saved = (load_file(str(f / "model.safetensors")) for f in (folder, tmp_path))
    assert shipped.keys() == saved.keys()
    assert all(torch.equal(shipped[key], saved[key]) for key in shipped)


def test_every_registered_kind_names_a_saved_module_of_its_artifact():
    bases = {"encoder": ContinuousEncoder, "tokenizer": CodeTokenizer, "decoder": CodeDecoder}
    for artifact, kinds in REGISTRY.items():
        for kind in kinds:
            cls = resolve(artifact, kind)
            assert issubclass(cls, bases[artifact]) and cls.kind == kind
            assert cls.artifact == artifact


def test_a_base_class_loads_whichever_kind_the_folder_holds(tmp_path):
    torch.manual_seed(0)
    encoder = VisionEncoder(model_name="micro-vit", out_dim=8)
    encoder.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["type"] == "vision"
    loaded = ContinuousEncoder.from_pretrained(tmp_path)
    assert isinstance(loaded, VisionEncoder)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_a_folder_of_another_artifact_or_kind_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="unknown decoder kind 'image'"):
        CodeDecoder.from_pretrained(ASSETS / "tokenizers/image")
    with pytest.raises(ValueError, match="holds a SpeechUnitTokenizer"):
        SemanticImageTokenizer.from_pretrained(ASSETS / "tokenizers/speech")
    with pytest.raises(ValueError, match="no config.json"):
        SpeechUnitTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "speech"}))
    with pytest.raises(ValueError, match="no model.safetensors"):
        SpeechUnitTokenizer.from_pretrained(tmp_path)


def test_pipeline_save_leaves_the_model_config_alone_and_loads_back(tmp_path):
    from omni.pipeline import OmniPipeline
    from omni.presets import build_micro_pipeline

    pipe = build_micro_pipeline()
    config = pipe.model.config
    before = (config.code_tokenizers, config.decoders)
    pipe.save_pretrained(tmp_path)
    assert (config.code_tokenizers, config.decoders) == before
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["code_tokenizers"] == {m: f"{m}_tokenizer" for m in pipe.model.code_tokenizers}
    assert saved["decoders"] == {m: f"{m}_decoder" for m in pipe.decoders}
    loaded = OmniPipeline.from_pretrained(tmp_path)
    assert {m: type(t) for m, t in loaded.model.code_tokenizers.items()} == {
        m: type(t) for m, t in pipe.model.code_tokenizers.items()
    }
    assert {m: type(d) for m, d in loaded.decoders.items()} == {
        m: type(d) for m, d in pipe.decoders.items()
    }
