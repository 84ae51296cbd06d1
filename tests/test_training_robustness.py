"""Training survives bad data and kills: a corrupt media file is a bad line (skipped and
reported once), and a half-written checkpoint left by a kill is removed on resume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from omni.common.manifest import media_segments, split_records
from omni.presets import build_micro
from training.curriculum import Curriculum
from training.data import DataSpec, Manifest, RowPacker
from training.metrics import read_metrics
from training.trainer import TrainOptions, build_packer, train_stage


@pytest.fixture
def corrupt_world(tmp_path) -> tuple[Path, Path]:
    """A small captioning world whose first training image (line 2) is not a PNG any more."""
    from training.toyworld import generate

    manifest = generate(tmp_path / "world", 10, seed=5, tasks=["caption"], progress=False)
    first = json.loads(manifest.read_text().splitlines()[1])
    assert first["split"] == "train"
    image = manifest.parent / first["turns"][1]["segments"][0]["path"]
    image.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return manifest, image


def _warnings_naming(caplog, name: str) -> int:
    return sum(name in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_corrupt_image_is_skipped_and_reported_once_across_readers(corrupt_world, caplog):
    manifest, image = corrupt_world
    _, processor = build_micro("micro-llama")
    read = Manifest(manifest)
    sources = [read.select("train"), read.select("train")]  # two mixture entries, one file
    packer = RowPacker(DataSpec(sources, [1.0, 1.0], 512, lookahead=4), processor)
    with caplog.at_level(logging.WARNING):
        for _ in range(12):  # more rows than samples: every sample is drawn more than once
            packer.next_batch(1)
    assert [(i.line, str(image) in i.reason) for i in read.issues] == [(2, True)]
    assert _warnings_naming(caplog, image.name) == 1


def test_a_corrupt_image_raises_naming_file_and_line_when_asked(corrupt_world):
    manifest, image = corrupt_world
    _, processor = build_micro("micro-llama")
    source = Manifest(manifest, on_error="raise")
    packer = RowPacker(DataSpec([source], [1.0], 512, lookahead=len(source)), processor)
    with pytest.raises(ValueError, match=rf"manifest\.jsonl:2: cannot decode .*{image.name}"):
        packer.next_batch(1)


def test_an_error_that_names_no_media_file_still_stops_the_run(corrupt_world):
    manifest, _ = corrupt_world
    _, processor = build_micro("micro-llama", encoders={})  # no image encoder at all
    packer = RowPacker(DataSpec([Manifest(manifest)], [1.0], 512, lookahead=2), processor)
    with pytest.raises(ValueError, match="image encoder"):
        packer.next_batch(1)


def test_a_missing_code_tokenizer_still_stops_the_run(corrupt_world, tmp_path):
    from training.data import CodeCache

    manifest, _ = corrupt_world
    _, processor = build_micro("micro-llama")
    spec = DataSpec([Manifest(manifest)], [1.0], 512, lookahead=2, media_mode="discrete")
    spec.cache = CodeCache(tmp_path / "codes", {})  # no image tokenizer for the image targets
    with pytest.raises(ValueError, match="need a tokenizer for image"):
        RowPacker(spec, processor).next_batch(1)


def _curriculum(folder: Path, manifest: Path, steps: int) -> Curriculum:
    stage = {
        "name": "sft-1-conversation",
        "mixture": [
            {"manifest": "world", "split": "train", "weight": 1.0},
            {"manifest": "world", "split": "train", "tasks": ["caption"], "weight": 1.0},
        ],
        "trainable": ["embeddings", "backbone"],
        "sequence_length": 256,
        "rows_per_step": 2,
        "micro_rows": 1,
        "warmup_steps": 1,
        "steps": steps,
        "checkpoint_every": 1,
    }
    (folder / "stage.yaml").write_text(yaml.safe_dump(stage))
    curriculum = {
        "model": {"preset": "micro-llama"},
        "manifests": {"world": str(manifest)},
        "stages": ["stage.yaml"],
    }
    (folder / "curriculum.yaml").write_text(yaml.safe_dump(curriculum))
    return Curriculum.load(folder / "curriculum.yaml")


def test_two_mixture_entries_on_one_manifest_report_a_bad_line_once(corrupt_world, caplog):
    manifest, _ = corrupt_world
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(["{not json", *lines]) + "\n")
    curriculum = _curriculum(manifest.parent, manifest, steps=1)
    _, processor = build_micro("micro-llama")
    with caplog.at_level(logging.WARNING):
        build_packer(curriculum.stages[0], curriculum.manifests, processor, None)
    assert _warnings_naming(caplog, f"{manifest}:1: not a JSON record") == 1


def test_training_and_resume_run_past_a_corrupt_image(corrupt_world, tmp_path, caplog):
    from omni.processor import OmniProcessor
    from training.models import load_model

    manifest, image = corrupt_world
    out = tmp_path / "run"
    options = TrainOptions(progress=False, tensorboard=False)

    def run(steps: int, resume: bool) -> None:
        curriculum = _curriculum(tmp_path, manifest, steps)
        model, tokenizer = load_model(None, curriculum.model)
        processor = OmniProcessor.from_model(model, tokenizer)
        run_options = TrainOptions(**{**vars(options), "resume": resume})
        train_stage(model, processor, curriculum.stages[0], curriculum.manifests, out, run_options)

    with caplog.at_level(logging.WARNING):
        run(steps=2, resume=False)
        killed = out / "checkpoints" / ".tmp-step-0000003-4242"  # what a kill mid-save leaves
        killed.mkdir()
        (killed / "model.safetensors").write_bytes(b"half")
        run(steps=4, resume=True)
    assert not killed.exists()
    assert [row["step"] for row in read_metrics(out)] == [1, 2, 3, 4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "latest",
        "step-0000003",
        "step-0000004",
    ]
    assert _warnings_naming(caplog, image.name) == 2  # once in each run


def test_records_without_a_split_are_in_train_for_every_reader(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    image = {"type": "image", "path": "a.png"}
    records = [
        {"turns": [{"role": "user", "segments": [image]}]},
        {"split": "test", "turns": [{"role": "user", "segments": [{**image, "path": "b.png"}]}]},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert [n for n, _ in split_records(manifest, ("train",))] == [1]
    assert [n for n, _ in split_records(tmp_path, ("test",))] == [2]
    assert [p.name for p, _, _ in media_segments(tmp_path, "image")] == ["a.png"]
    with pytest.raises(ValueError, match="no image segments in the validation"):
        media_segments(tmp_path, "image", ("validation",))
