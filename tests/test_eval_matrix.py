"""The any-to-any matrix: its scorers give the checkers' verdicts (known-correct answers score
100%, wrong ones do not), and ``omni eval matrix`` on a micro pipeline writes a report with
every direction, 95% intervals, seconds per answer and MTP acceptance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile
from PIL import Image

from omni.cli import main
from omni.results import GenerationResult
from training.matrix import interval, markdown_table, read_split
from training.matrix_scores import DIRECTIONS, ScoreContext, reference_text

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "toyworld-examples" / "manifest.jsonl"


def _records() -> dict[str, dict]:
    return {r["task"]: r for split in ("train", "test") for r in _split(split)}


def _split(split: str) -> list[dict]:
    from omni.common.manifest import IssueLog, read_records

    records = [r for _, r in read_records(EXAMPLES, IssueLog("raise")) if r["split"] == split]
    for record in records:
        for turn in record["turns"]:
            for segment in turn["segments"]:
                if "path" in segment:
                    segment["path"] = str(EXAMPLES.parent / segment["path"])
    return records


def _true_answer(record: dict) -> GenerationResult:
    """The reference answer of a record as if a model had produced it."""
    segment = record["turns"][-1]["segments"][0]
    if segment["type"] == "image":
        return GenerationResult(image=Image.open(segment["path"]).convert("RGB"))
    if segment["type"] == "audio":
        wave, rate = soundfile.read(segment["path"], dtype="float32")
        return GenerationResult(audio=(rate, wave))
    return GenerationResult(text=reference_text(record))


def _direction(name: str):
    return next(d for d in DIRECTIONS if d.name == name)


@pytest.fixture(scope="module")
def context():
    records = _records()
    distractors = [records["asr"]["meta"]["text"], "a big red circle on the left"]
    return ScoreContext({"en": distractors})


@pytest.mark.parametrize(
    ("task", "direction"),
    [
        ("caption", "caption_ko"),
        ("vqa", "vqa"),
        ("translate", "translate_ko_en"),
        ("draw", "draw"),
        ("asr", "asr_en"),
        ("tts", "tts"),
        ("spoken_vqa", "spoken_vqa"),
    ],
)
def test_known_correct_answers_score_full_marks(task, direction, context):
    record = _records()[task]
    assert _direction(direction).select(record)
    scores = _direction(direction).score(record, _true_answer(record), context)
    for metric, value in scores.items():
        assert value == (0.0 if metric == "cer" else 100.0 if metric == "chrf" else 1.0), metric


def test_wrong_answers_are_judged_wrong(context):
    records = _records()
    caption = _direction("caption_ko").score(
        records["caption"], GenerationResult(text="a small blue square at the top"), context
    )
    assert caption["exact_scene"] == 0.0 and caption["attribute_accuracy"] < 0.5
    wrong_scene = _true_answer(records["caption"])  # a picture of another scene
    assert _direction("draw").score(records["draw"], wrong_scene, context)["exact_scene"] == 0.0
    spoken = _true_answer(records["asr"])  # says another sentence
    assert _direction("tts").score(records["tts"], spoken, context)["match"] == 0.0
    assert (
        _direction("asr_en").score(records["asr"], GenerationResult(text="x"), context)["cer"] > 0.9
    )
    auto = _direction("auto").score(records["draw"], GenerationResult(text="a circle"), context)
    assert auto == {"right_modality": 0.0}


def test_intervals_are_wilson_for_shares_and_normal_for_means():
    mean, low, high = interval([1.0] * 9 + [0.0], "share")
    assert mean == 0.9 and low == pytest.approx(0.5958, abs=1e-3) and high < 1.0
    mean, low, high = interval([0.1, 0.3], "mean")
    assert mean == pytest.approx(0.2) and low < 0.2 < high
    # A mean of fractions never reaches past 1 (nor below 0); chrF runs to 100.
    assert interval([0.5, 1.0], "mean") == (0.75, pytest.approx(0.26, abs=0.01), 1.0)
    assert interval([50.0, 100.0], "mean", upper=100.0)[2] == 100.0


def test_matrix_command_reports_every_direction_on_a_micro_pipeline(tmp_path):
    from omni.presets import build_micro_pipeline

    pipe = build_micro_pipeline()
    # Plain by default (as the shipped default model is): --speedup still times the drafts.
    pipe.model.generation_config.speculative = False
    pipe.model.generation_config._from_model_config = False
    pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "report"
    argv = ["eval", "matrix", "--model", str(tmp_path / "model"), "--data", str(EXAMPLES)]
    assert main([*argv, "--split", "test", "--n", "1", "--out", str(out), "--speedup"]) == 0
    report = json.loads((out / "matrix.json").read_text())
    rows = {row["direction"]: row for row in report["directions"]}
    assert list(rows) == [d.name for d in DIRECTIONS]
    assert rows["caption_en"]["n"] == 0 and rows["draw"]["n"] == 1  # the test split has a draw
    draw = rows["draw"]["metrics"]["exact_scene"]
    assert draw["low"] <= draw["value"] <= draw["high"]
    assert rows["draw"]["seconds_per_answer"] > 0
    assert {"match", "unit_cer"} <= set(rows["tts"]["metrics"])
    assert rows["tts"]["mtp_acceptance"] is not None and rows["draw"]["speculative_speedup"] > 0
    assert rows["caption_en"]["speculative_speedup"] is None
    table = (out / "matrix.md").read_text()
    assert all(f"| {name} |" in table for name in rows)
    assert (out / "draw-grid.png").is_file() and list(out.glob("*.wav"))
    assert main([*argv, "--split", "unseen", "--n", "1", "--out", str(out)]) == 2


def test_bad_split_is_refused_before_any_work():
    with pytest.raises(ValueError, match="--split must be one of"):
        read_split(EXAMPLES, "validation-ish")
    assert markdown_table([], "empty").startswith("### empty")
