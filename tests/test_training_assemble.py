"""From training to a usable model: the vocabulary sized from the shipped tokenizers, the
pipeline assembled from an LM folder and the shipped tokenizers and decoders, loaded by
``omni.load`` and answering in every output modality."""

from __future__ import annotations

from pathlib import Path

import pytest

import omni
from omni.presets import build_micro
from training.assemble import assemble_pipeline
from training.models import layout_for, load_code_tokenizers, load_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TOKENIZERS = {
    "image": str(ROOT / "assets/tokenizers/image"),
    "audio": str(ROOT / "assets/tokenizers/speech"),
}
SHIPPED_DECODERS = {
    "image": str(ROOT / "assets/decoders/image"),
    "audio": str(ROOT / "assets/decoders/vocoder"),
}


@pytest.fixture(scope="module")
def shipped_tokenizers():
    return load_code_tokenizers(SHIPPED_TOKENIZERS)


def test_preset_vocabulary_is_sized_from_the_shipped_tokenizers(shipped_tokenizers):
    model, tokenizer = load_model(None, {"preset": "micro-llama"}, shipped_tokenizers)
    layout = model.layout
    assert layout.image_codes == shipped_tokenizers["image"].codebook_size == 512
    assert layout.audio_codes == shipped_tokenizers["audio"].codebook_size == 1000
    assert layout.image_grid == (8, 8) and layout.text_size == len(tokenizer)
    assert model.get_output_embeddings().weight.shape[0] == layout.total_size


def test_a_checkpoint_refuses_a_tokenizer_of_another_codebook(tmp_path, shipped_tokenizers):
    model, processor = build_micro("micro-llama", encoders={})  # 256 image codes
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="image tokenizer has 512 codes but the model at"):
        load_model(str(tmp_path), {}, shipped_tokenizers)


def _lm_folder(folder: Path, tokenizers, **overrides) -> Path:
    from tokenizers_mm.text import micro_text_tokenizer

    text = micro_text_tokenizer()
    layout = layout_for(len(text), tokenizers)
    model, processor = build_micro(
        "micro-llama", tokenizer=text, layout=layout, encoders={}, **overrides
    )
    model.save_pretrained(folder)
    processor.tokenizer.save_pretrained(folder)
    return folder


def test_assembled_pipeline_loads_and_writes_every_modality(tmp_path, shipped_tokenizers):
    lm = _lm_folder(tmp_path / "lm", shipped_tokenizers)
    out = assemble_pipeline(lm, tmp_path / "pipeline", SHIPPED_TOKENIZERS, SHIPPED_DECODERS)
    pipeline = omni.load(out)
    assert set(pipeline.decoders) == {"image", "audio"}
    assert set(pipeline.model.code_tokenizers) == {"image", "audio"}
    image = pipeline.generate("draw a red circle", out_modality="image", seed=0)
    assert image.image is not None  # an untrained LM may close the image early
    speech = pipeline.generate("say hi", out_modality="audio", seed=0, max_new_tokens=12)
    assert speech.audio is not None


def test_assembly_refuses_a_decoder_of_another_codebook(tmp_path, shipped_tokenizers):
    from decoders.vision import ImageDecoder, ImageDecoderConfig

    ImageDecoder(ImageDecoderConfig(codebook_size=64)).save_pretrained(tmp_path / "dec")
    lm = _lm_folder(tmp_path / "lm", shipped_tokenizers)
    decoders = {**SHIPPED_DECODERS, "image": str(tmp_path / "dec")}
    with pytest.raises(ValueError, match="image decoder has 64 codes but the LM's vocabulary"):
        assemble_pipeline(lm, tmp_path / "out", SHIPPED_TOKENIZERS, decoders)
    assert not (tmp_path / "out").exists()  # nothing written before the check


def test_pipeline_assemble_command(tmp_path, shipped_tokenizers):
    from omni.cli import main

    lm = _lm_folder(tmp_path / "lm", shipped_tokenizers)
    argv = ["pipeline", "assemble", "--lm", str(lm), "--out", str(tmp_path / "p"), "--tokenizers"]
    argv += [f"{m}={f}" for m, f in SHIPPED_TOKENIZERS.items()] + ["--decoders"]
    argv += [f"{m}={f}" for m, f in SHIPPED_DECODERS.items()]
    assert main(argv) == 0
    assert omni.load(tmp_path / "p").layout.image_codes == 512
    assert main(["pipeline", "assemble", "--lm", str(tmp_path), "--out", "x"]) == 2


def test_a_pipeline_assembled_plain_by_default_drafts_only_when_asked(tmp_path, shipped_tokenizers):
    from omni.cli import main

    lm = _lm_folder(tmp_path / "lm", shipped_tokenizers)
    argv = ["pipeline", "assemble", "--lm", str(lm), "--out", str(tmp_path / "p")]
    assert main([*argv, "--speculative-default", "off"]) == 0
    plain = omni.load(tmp_path / "p")
    assert plain.generate("hi", max_new_tokens=6).usage["drafts"] == 0
    assert plain.generate("hi", max_new_tokens=6, speculative=True).usage["drafts"] > 0
    drafting = omni.load(assemble_pipeline(lm, tmp_path / "q", {}, {}))  # the LM's own: drafts
    assert drafting.generate("hi", max_new_tokens=6).usage["drafts"] > 0


def test_drafting_by_default_needs_an_mtp_module(tmp_path, shipped_tokenizers):
    lm = _lm_folder(tmp_path / "lm", shipped_tokenizers, mtp_layers=0)
    with pytest.raises(ValueError, match="has no MTP module to draft with"):
        assemble_pipeline(lm, tmp_path / "p", {}, {}, speculative_default=True)


def test_a_pipeline_can_draft_by_default_for_some_output_modalities_only(
    tmp_path, shipped_tokenizers
):
    from omni.cli import main

    lm = _lm_folder(tmp_path / "lm", shipped_tokenizers)
    argv = ["pipeline", "assemble", "--lm", str(lm), "--out"]
    assert main([*argv, str(tmp_path / "t"), "--speculative-default", "text"]) == 0
    assert omni.load(tmp_path / "t").generate("hi", max_new_tokens=6).usage["drafts"] > 0
    assert main([*argv, str(tmp_path / "a"), "--speculative-default", "audio,image"]) == 0
    others = omni.load(tmp_path / "a")
    assert others.generate("hi", max_new_tokens=6).usage["drafts"] == 0
    assert main([*argv, str(tmp_path / "v"), "--speculative-default", "text,video"]) == 2
    assert not (tmp_path / "v").exists()
