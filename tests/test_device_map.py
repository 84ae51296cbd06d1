"""``omni.load(device_map=...)``: the LM spread with accelerate answers as the plain load does."""

from functools import partial

import pytest
import torch
from accelerate import dispatch_model

import omni
from omni import placement

PROMPT = "a red square"


@pytest.fixture(scope="module")
def plain_tokens(saved):
    return omni.generate(PROMPT, model=omni.load(saved), max_new_tokens=8, seed=0).tokens


def hooked_devices(model: torch.nn.Module) -> set[str]:
    """The execution devices accelerate's hooks move inputs to."""
    return {
        str(module._hf_hook.execution_device)
        for module in model.modules()
        if hasattr(module, "_hf_hook") and hasattr(module._hf_hook, "execution_device")
    }


def test_auto_with_max_memory_on_the_cpu_answers_as_the_plain_load(saved, plain_tokens):
    pipe = omni.load(saved, device_map="auto", max_memory={"cpu": "1GiB"})
    assert pipe.model.hf_device_map  # accelerate placed it, nothing on a GPU
    assert set(pipe.model.hf_device_map.values()) == {"cpu"}
    assert omni.generate(PROMPT, model=pipe, max_new_tokens=8, seed=0).tokens == plain_tokens


def test_an_explicit_map_putting_decoder_layers_on_the_cpu_answers_as_the_plain_load(
    saved, plain_tokens, monkeypatch
):
    # accelerate hooks a one-device map only when forced: forced here, so every module runs
    # through the hooks that move its inputs, as on several GPUs.
    monkeypatch.setattr(placement, "dispatch_model", partial(dispatch_model, force_hooks=True))
    model = omni.load(saved).model
    layers = [name for name, _ in model.backbone.model.layers.named_children()]
    device_map = {name: "cpu" for name, _ in model.named_children() if name != "backbone"}
    device_map |= {
        "backbone.model.embed_tokens": "cpu",
        "backbone.model.norm": "cpu",
        "backbone.model.rotary_emb": "cpu",
        "backbone.lm_head": "cpu",
    }
    device_map |= {f"backbone.model.layers.{name}": "cpu" for name in layers}
    pipe = omni.load(saved, device_map=device_map)
    assert pipe.model.hf_device_map == device_map
    assert hooked_devices(pipe.model) == {"cpu"}
    assert omni.generate(PROMPT, model=pipe, max_new_tokens=8, seed=0).tokens == plain_tokens


def test_the_backbone_layer_class_is_never_split(saved):
    model = omni.load(saved).model
    assert "LlamaDecoderLayer" in placement.no_split_modules(model)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device_map": "auto", "device": "cpu"}, "not both"),
        ({"device_map": "balanced_low_0"}, "unknown device_map"),
        ({"device_map": {}}, "non-empty dict"),
        ({"device_map": ["cpu"]}, "non-empty dict"),
        ({"max_memory": {"cpu": "1GiB"}}, "max_memory bounds"),
        ({"device_map": {"backbone.nowhere": "cpu"}}, "does not have"),
    ],
)
def test_bad_device_maps_are_value_errors(saved, options, message):
    with pytest.raises(ValueError, match=message):
        omni.load(saved, **options)


def test_the_generate_command_takes_a_device_map(saved, tmp_path, capsys):
    from omni.cli import main

    out = tmp_path / "answer.txt"
    args = ["generate", "--model", str(saved), "--input", "hi", "--max-new-tokens", "4"]
    assert main([*args, "--device-map", "auto", "--output", str(out)]) == 0
    assert out.read_text()
    assert main([*args, "--device-map", "everywhere"]) == 2
    assert "unknown device_map 'everywhere'" in capsys.readouterr().err
