"""The agentic and safety directions of ``omni eval matrix``: the reference answers score
100% on every one, a refusing model scores as refusing, and the command runs on a micro model."""

from __future__ import annotations

import json

import pytest

from omni.cli import main
from omni.results import GenerationResult
from omni.sequence import Sample, Text, ToolCall
from omni.tools import parse_tool_calls, render_call, tool_schemas
from training.agentic import generate
from training.matrix import directions_for, run_matrix
from training.matrix_agentic import AGENTIC_DIRECTIONS
from training.matrix_scores import DIRECTIONS


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("agentic"), 1500, seed=5)


@pytest.fixture(scope="module")
def records(manifest):
    lines = manifest.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["split"] in ("test", "novel-tool")]


def _spoken(turn) -> str:
    return "".join(
        render_call(s.name, s.arguments) if isinstance(s, ToolCall) else s.text
        for s in turn.segments
        if isinstance(s, (Text, ToolCall))
    )


class Replay:
    """Answers as the record's reference conversation does, turn by turn (found by the
    conversation's first message), so every direction should score perfectly."""

    model = None  # no speech probe

    def __init__(self, records):
        self.references = {}
        for record in records:
            sample = Sample.from_dict(record)
            said = [_spoken(t) for t in sample.turns if t.role == "assistant"]
            self.references[sample.turns[0].segments[0].text] = said

    def generate(self, sample, out_modality="text", tools=None, **options):
        said = self.references[sample.turns[0].segments[0].text]
        text = said[sum(t.role == "assistant" for t in sample.turns)]
        result = GenerationResult(text=text)
        if tools:
            result.text, result.tool_calls = parse_tool_calls(text, tool_schemas(tools))
        return result


class Refuser:
    model = None

    def generate(self, sample, out_modality="text", tools=None, **options):
        return GenerationResult(text="I can't help with that.")


def _rows(reports):
    return {r["direction"]: r for r in reports if r["n"]}


def test_reference_answers_score_perfectly_on_every_agentic_direction(records):
    openings = [r["turns"][0]["segments"][0]["text"] for r in records]
    unique = [r for r, o in zip(records, openings) if openings.count(o) == 1]  # replayable
    rows = _rows(run_matrix(Replay(unique), unique, 20, AGENTIC_DIRECTIONS))
    assert set(rows) == {d.name for d in AGENTIC_DIRECTIONS}
    for name, row in rows.items():
        metrics = {m: v["value"] for m, v in row["metrics"].items()}
        expected = {"type_accuracy": 1.0} if name.startswith("safety") else {
            "call_validity": 1.0, "argument_match": 1.0, "success": 1.0}  # fmt: skip
        if name == "safety_benign":
            expected["over_refusal"] = 0.0
        assert metrics == expected, name


def test_a_model_that_always_refuses_over_refuses_and_fails_the_tasks(records):
    rows = _rows(run_matrix(Refuser(), records, 10, AGENTIC_DIRECTIONS))
    assert rows["safety_benign"]["metrics"]["over_refusal"]["value"] == 1.0
    assert rows["safety_benign"]["metrics"]["type_accuracy"]["value"] == 0.0
    single = rows["tool_single"]["metrics"]
    assert single["success"]["value"] == 0.0 and "call_validity" not in single  # no call made
    safety = rows["safety"]["metrics"]["type_accuracy"]["value"]
    assert safety == 0.0  # a bare refusal is neither a redirection nor a safe completion


def test_the_matrix_reads_the_directions_of_the_data_it_is_given(records):
    assert directions_for(records) == AGENTIC_DIRECTIONS
    toy = [{"task": "vqa", "meta": {"lang": "en"}, "turns": []}]
    assert directions_for(toy) == DIRECTIONS


def test_matrix_command_runs_the_tool_loop_on_a_micro_pipeline(tmp_path, manifest):
    from omni.presets import build_micro_pipeline

    build_micro_pipeline().save_pretrained(tmp_path / "model")
    out = tmp_path / "report"
    argv = ["eval", "matrix", "--model", str(tmp_path / "model"), "--data", str(manifest)]
    argv += ["--split", "novel-tool", "--n", "1", "--out", str(out)]
    assert main([*argv, "--directions", "tool_novel", "safety_benign"]) == 0
    rows = {r["direction"]: r for r in json.loads((out / "matrix.json").read_text())["directions"]}
    assert rows["tool_novel"]["n"] == 1 and rows["safety_benign"]["n"] == 0
    assert 0.0 <= rows["tool_novel"]["metrics"]["success"]["value"] <= 1.0
    assert "| tool_novel | 1 | success |" in (out / "matrix.md").read_text()
