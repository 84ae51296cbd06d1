"""Generator: every task in the sample format, byte-identical for a seed, clear espeak error."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from training.toyworld import NOVEL_PAIRS, TASKS, generate, parse_caption
from training.toyworld.scenes import ObjectAttrs
from training.toyworld.speech import EspeakNotFoundError, SpeechRenderer


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Short audio ops run faster on one thread than fighting other jobs for two cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("world"), n=28, seed=7, progress=False)


def _records(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


def test_same_seed_gives_byte_identical_output(world, tmp_path):
    again = generate(tmp_path, n=28, seed=7, progress=False)
    assert _files(again.parent) == _files(world.parent)
    other = generate(tmp_path / "other", n=28, seed=8, progress=False)
    assert other.read_bytes() != world.read_bytes()


def test_every_task_is_written_in_the_sample_format(world):
    records = _records(world)
    assert [r["task"] for r in records[:7]] == list(TASKS)
    for record in records:
        assert record["split"] in ("train", "validation", "test", "novel")
        assert [t["role"] for t in record["turns"]] == ["system", "user", "assistant"]
        for turn in record["turns"]:
            for segment in turn["segments"]:
                assert segment["type"] in ("text", "image", "audio")
                if segment["type"] != "text":
                    assert (world.parent / segment["path"]).is_file()


def test_media_are_png_images_and_16k_mono_wav(world):
    records = _records(world)
    segments = [s for r in records for t in r["turns"] for s in t["segments"]]
    image = Image.open(world.parent / next(s["path"] for s in segments if s["type"] == "image"))
    assert image.size == (64, 64) and image.mode == "RGB"
    audio = [s for s in segments if s["type"] == "audio"]
    assert audio and all("voice" in s for s in audio)
    info = sf.info(world.parent / audio[0]["path"])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.duration > 0.3


def test_targets_match_the_scene(world):
    for record in _records(world):
        attrs = {ObjectAttrs(**a) for a in record["meta"]["attributes"]}
        target = record["turns"][-1]["segments"][0]
        if record["task"] == "caption":
            assert parse_caption(target["text"]) == attrs
        if record["task"] in ("vqa", "spoken_vqa"):
            answer = target.get("text")
            assert answer == record["meta"]["answer"] in record["meta"]["answer_candidates"]
        if record["task"] == "translate":
            assert record["meta"]["target_lang"] != record["meta"]["lang"]


def test_novel_split_uses_held_out_pairs_and_others_never(tmp_path):
    manifest = generate(tmp_path, n=120, seed=1, tasks=["caption"], progress=False)
    records = _records(manifest)
    assert {r["split"] for r in records} == {"train", "validation", "test", "novel"}
    for record in records:
        pairs = {(a["colour"], a["shape"]) for a in record["meta"]["attributes"]}
        assert bool(pairs & NOVEL_PAIRS) == (record["split"] == "novel")
    assert not any(p.suffix == ".wav" for p in (tmp_path / "media").iterdir())


def test_cli_writes_a_world(tmp_path, capsys):
    import argparse

    from training.toyworld import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = ["--out", str(tmp_path), "--n", "4", "--seed", "2", "--size", "48"]
    argv += ["--tasks", "caption", "vqa"]
    assert cli.run(parser.parse_args(argv + ["--style", "classic"])) == 0
    assert "wrote 4 samples" in capsys.readouterr().out
    assert Image.open(tmp_path / "media" / "caption-000000.png").size == (48, 48)
    # The default is the varied world; an option replaces one of its ranges.
    varied = ["--out", str(tmp_path / "varied"), "--n", "4", "--tasks", "caption"]
    assert cli.run(parser.parse_args(varied + ["--style-option", "jpeg_share=0"])) == 0
    world = json.loads((tmp_path / "varied" / "world.json").read_text())
    assert world["style"]["name"] == "varied" and world["style"]["drawing"]["jpeg_share"] == 0
    assert Image.open(tmp_path / "varied" / "media" / "caption-000000.png").size != (64, 64)


def test_cli_refuses_an_unknown_style_or_option(tmp_path, capsys):
    import argparse

    from training.toyworld import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = ["--out", str(tmp_path), "--n", "2", "--tasks", "caption"]
    assert cli.run(parser.parse_args(argv + ["--style", "wavy"])) == 2
    assert "unknown world style 'wavy'" in capsys.readouterr().out
    assert cli.run(parser.parse_args(argv + ["--style-option", "blur=1"])) == 2
    assert "unknown style options ['blur']" in capsys.readouterr().out
    assert cli.run(parser.parse_args(argv + ["--style-option", "jpeg_share"])) == 2
    assert "not KEY=VALUE" in capsys.readouterr().out
    assert not (tmp_path / "manifest.jsonl").exists()


def test_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown or no tasks"):
        generate(tmp_path, n=2, seed=0, tasks=["dance"], progress=False)
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path, n=0, seed=0, progress=False)


def test_missing_espeak_says_how_to_install(monkeypatch):
    monkeypatch.setattr("training.toyworld.speech.shutil.which", lambda name: None)
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        SpeechRenderer()


def test_rendering_is_deterministic_and_16k():
    from training.toyworld.speech import GENERATION_VOICES

    voice = GENERATION_VOICES["ko"][1]
    a = SpeechRenderer().render("왼쪽에 큰 빨간 원", voice)
    b = SpeechRenderer().render("왼쪽에 큰 빨간 원", voice)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.5 < len(a) / 16000 < 5


def test_renderer_cache_keeps_only_the_latest_renderings():
    from training.toyworld.speech import GENERATION_VOICES

    renderer = SpeechRenderer(cache_size=2)
    voice = GENERATION_VOICES["en"][0]
    first = renderer.render("it is big", voice)
    renderer.render("it is small", voice)
    renderer.render("there is one", voice)
    seconds = renderer.espeak_seconds
    assert np.array_equal(renderer.render("it is big", voice), first)
    assert renderer.espeak_seconds > seconds  # evicted, so rendered again
