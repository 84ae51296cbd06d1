"""``omni convert hcx-omni``: a synthetic micro checkpoint in the official unified layout
(``tests/micro_hcx_omni.py`` cites where each name and config field comes from) converts its
language model, its vision and audio encoders with their projectors and its in-place code
tokens faithfully, answers an image-and-audio question, and names every part it skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from micro_backbones import TEXT_VOCAB
from micro_hcx_omni import (
    AUDIO_CODES,
    IMAGE_CODES,
    PREPROCESSOR,
    reference_audio,
    reference_vision,
    write_micro_hcx_omni,
)
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.masking_utils import create_bidirectional_mask

import omni
from omni.cli import main
from omni.hcx_convert import convert_hcx_omni
from omni.hcx_parts import PARTS, encoder_config
from omni.pipeline import OmniPipeline
from omni.sequence import Audio, Image


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("hcx")
    llm, unified = write_micro_hcx_omni(root)
    report = convert_hcx_omni(unified, root / "omni")
    return llm, unified, OmniPipeline.from_pretrained(root / "omni"), report


def _loaded(module, unified, prefix, rename=lambda name: name):
    """``module`` with the unified checkpoint's tensors under ``prefix``, loaded strictly."""
    index = json.loads((unified / "model.safetensors.index.json").read_text())["weight_map"]
    state = {}
    for name, shard in index.items():
        if name.startswith(prefix):
            with safe_open(unified / shard, framework="pt") as handle:
                state[rename(name[len(prefix) :])] = handle.get_tensor(name)
    module.load_state_dict(state, strict=True)
    return module.eval()


def test_the_language_model_converts_with_the_sources_text_predictions(converted):
    llm, _, pipeline, _ = converted
    source = AutoModelForCausalLM.from_pretrained(llm).eval()
    ids = torch.randint(0, TEXT_VOCAB, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = source(ids).logits
        got = pipeline.model(input_ids=ids).logits[..., : expected.shape[-1]]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert pipeline.generate("hello", max_new_tokens=4).tokens


def test_the_code_tokens_are_described_in_place_and_keep_their_rows(converted):
    llm, _, pipeline, _ = converted
    tokenizer = AutoTokenizer.from_pretrained(llm)
    layout = pipeline.layout
    first_image = tokenizer.convert_tokens_to_ids("<|vision0|>")
    first_audio = tokenizer.convert_tokens_to_ids("<|audio0|>")
    assert layout.range_of("image") == range(first_image, first_image + IMAGE_CODES)
    assert layout.range_of("audio") == range(first_audio, first_audio + AUDIO_CODES)
    assert layout.image_grid == (27, 27)
    assert layout.text_size == len(tokenizer)  # nothing appended for the codes
    assert layout.used_size == len(tokenizer) + len(layout.specials)
    source = AutoModelForCausalLM.from_pretrained(llm).get_input_embeddings().weight
    rows = pipeline.model.get_input_embeddings().weight[: len(tokenizer)]
    torch.testing.assert_close(rows, source, atol=0, rtol=0)
    assert not layout.output_mask("text")[first_image : first_image + IMAGE_CODES].any()


def test_the_vision_encoder_equals_transformers_classes_on_the_same_tensors(converted):
    _, unified, pipeline, _ = converted
    width = pipeline.model.config.hidden_size
    tower, linear = reference_vision(width, seed=99)  # other random weights, then the checkpoint's
    tower = _loaded(tower, unified, "model.vision_model.")
    linear = _loaded(linear, unified, "model.mm_projector.")
    encoder = pipeline.model.encoders["image"]
    assert (encoder.min_pixels, encoder.max_pixels) == (64, PREPROCESSOR["max_pixels"])
    pixels = np.random.default_rng(0).integers(0, 255, (30, 44, 3), dtype=np.uint8)
    item = encoder.preprocess(pixels)
    with torch.no_grad():
        merged = tower(item.pixel_values, grid_thw=item.grid_thw[None]).pooler_output
        (got,) = encoder([item])
    assert got.shape == (encoder.num_tokens(item), width)
    torch.testing.assert_close(got, linear(merged), atol=1e-5, rtol=1e-5)


def test_the_audio_encoder_equals_transformers_classes_on_the_same_tensors(converted):
    _, unified, pipeline, _ = converted
    width = pipeline.model.config.hidden_size
    reference, mlp = reference_audio(width, seed=99)
    reference = _loaded(reference, unified, "model.audio_model.")
    names = {f"fc{i}.{p}": f"{2 * i - 2}.{p}" for i in (1, 2) for p in ("weight", "bias")}
    mlp = _loaded(mlp, unified, "model.audio_projector.", names.__getitem__)
    encoder = pipeline.model.encoders["audio"]
    wave = np.random.default_rng(1).standard_normal(16_000 * 31).astype(np.float32) * 0.1
    item = encoder.preprocess((wave, 16_000))  # a full 30 s window, then 1 s padded
    assert item.real_frames == [3000, 100]
    # transformers' Qwen2AudioModel masks the padding from the conv stem's lengths
    lengths = torch.tensor([1500, 50])
    real = (torch.arange(1500)[None] < lengths[:, None]).long()
    mask = create_bidirectional_mask(
        config=reference.config, inputs_embeds=torch.zeros(2, 1500, 1), attention_mask=real
    )
    with torch.no_grad():
        hidden = reference(item.mel, attention_mask=mask).last_hidden_state
        expected = mlp(torch.cat([hidden[0], hidden[1, :25]]))
        unmasked = reference(item.mel[:1]).last_hidden_state[0]  # no padding: no mask needed
        (got,) = encoder([item])
    assert got.shape == (750 + 25, width) == (encoder.num_tokens(item), width)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(encoder.hidden_states(item)[:750], unmasked, atol=1e-5, rtol=1e-5)


def test_an_image_and_audio_question_is_answered_with_text(converted):
    _, _, pipeline, _ = converted
    ran = []
    hooks = [
        pipeline.model.encoders[m].register_forward_hook(lambda mod, i, o, m=m: ran.append(m))
        for m in ("image", "audio")
    ]
    image = np.random.default_rng(2).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    wave = np.random.default_rng(3).standard_normal(8_000).astype(np.float32) * 0.1
    try:
        result = omni.generate(
            [Image(image), Audio((16_000, wave)), "what do you see and hear?"],
            model=pipeline,
            max_new_tokens=6,
        )
    finally:
        for hook in hooks:
            hook.remove()
    assert sorted(set(ran)) == ["audio", "image"]
    assert isinstance(result.text, str) and result.tokens
    assert all(t not in pipeline.layout.range_of("image") for t in result.tokens)


def test_the_report_names_every_converted_and_skipped_part(converted):
    _, _, _, report = converted
    assert report[0].startswith("converted: language model")
    converted_lines = [line for line in report if line.startswith("converted:")]
    assert any(
        "model.vision_model.*" in line and "model.mm_projector.*" in line
        for line in converted_lines
    )
    assert any(
        "model.audio_model.*" in line and "model.audio_projector.*" in line
        for line in converted_lines
    )
    skipped = [line for line in report if line.startswith("skipped:")]
    for prefix in ("discrete_vision_model", "discrete_audio_model", "video_audio_compressor"):
        assert any(f"model.{prefix}.*" in line for line in skipped), prefix
    assert any("vision_decoder/" in line for line in skipped)
    assert any("image codes in place" in line for line in report)


def test_the_command_prints_the_report_and_writes_a_loadable_folder(converted, tmp_path, capsys):
    _, unified, pipeline, _ = converted
    assert main(["convert", "hcx-omni", str(unified), "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert "converted: image encoder" in printed and "converted: audio encoder" in printed
    assert "skipped: image tokenizer (TA-Tok)" in printed
    loaded = OmniPipeline.from_pretrained(tmp_path / "cli")
    assert loaded.model.config.encoders == pipeline.model.config.encoders


def test_a_checkpoint_missing_an_encoder_tensor_is_refused_before_loading(tmp_path):
    _, unified = write_micro_hcx_omni(tmp_path, drop=("model.mm_projector.bias",))
    with pytest.raises(ValueError, match=r"image encoder .* missing \['projector.bias'\]"):
        convert_hcx_omni(unified, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fields_a_release_config_leaves_out_take_transformers_defaults(tmp_path):
    vision, audio = PARTS
    entry = encoder_config(vision, {"vision_config": {"depth": 3}}, tmp_path)
    assert entry["vision"]["depth"] == 3 and entry["vision"]["window_size"] == 112
    assert (entry["min_pixels"], entry["max_pixels"]) == (3136, 2073600)  # no preprocessor file
    entry = encoder_config(audio, {"audio_config": {"d_model": 16}}, tmp_path)
    assert entry["audio"]["d_model"] == 16 and entry["audio"]["num_mel_bins"] == 128


def test_encoder_tensors_without_their_config_are_refused(tmp_path):
    _, unified = write_micro_hcx_omni(tmp_path)
    config = json.loads((unified / "config.json").read_text())
    del config["audio_config"]
    (unified / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model.audio_model.. tensors but .* no audio_config"):
        convert_hcx_omni(unified, tmp_path / "out")


def test_a_folder_that_is_not_the_unified_layout_is_refused(tmp_path, capsys):
    llm, _ = write_micro_hcx_omni(tmp_path)
    with pytest.raises(ValueError, match="text_config with model_type 'hyperclovax'"):
        convert_hcx_omni(llm, tmp_path / "out")
    assert main(["convert", "hcx-omni", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err
