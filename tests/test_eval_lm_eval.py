"""lm-evaluation-harness over a saved micro pipeline: the task YAMLs read the exported test
split, the chat template is applied, answers are text, and the figures agree with the matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omni.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "toyworld-examples" / "manifest.jsonl"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved micro pipeline and a manifest with one test translation each way."""
    from omni.presets import build_micro_pipeline

    root = tmp_path_factory.mktemp("lm-eval")
    build_micro_pipeline().save_pretrained(root / "model")
    source = next(json.loads(line) for line in EXAMPLES.open() if '"translate"' in line)
    with (root / "manifest.jsonl").open("w") as file:
        for lang, text in (("ko", None), ("en", "Translate into Korean: a big red circle")):
            record = json.loads(json.dumps(source))
            record.update(id=f"translate-{lang}", split="test")
            record["meta"]["lang"] = lang
            if text:
                record["turns"][1]["segments"][0]["text"] = text
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return root


def test_lm_eval_runs_the_translation_tasks_and_agrees_with_the_matrix(setup):
    import omni
    from training.matrix import read_split, run_matrix
    from training.matrix_scores import DIRECTIONS

    out = setup / "out"
    argv = [
        "eval",
        "lm-eval",
        "--model",
        str(setup / "model"),
        "--data",
        str(setup / "manifest.jsonl"),
    ]
    assert main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "lm-eval.json").read_text())
    assert set(results) == {"omni_translate_en_ko", "omni_translate_ko_en"}
    exported = (out / "data" / "translate_en_ko.jsonl").read_text().splitlines()
    assert json.loads(exported[0])["prompt"] == "Translate into Korean: a big red circle"
    pipeline = omni.load(setup / "model")
    translation = tuple(d for d in DIRECTIONS if d.name.startswith("translate"))
    records = read_split(setup / "manifest.jsonl", "test")
    reports = run_matrix(pipeline, records, 1, translation, options={"max_new_tokens": 64})
    for report in reports:
        task = results["omni_" + report["direction"]]
        metrics = report["metrics"]
        assert task["exact_match,none"] == metrics["exact"]["value"]
        assert task["chrf,none"] == pytest.approx(metrics["chrf"]["value"], abs=0.5)


def test_lm_eval_refuses_unknown_tasks_and_missing_models(setup, tmp_path):
    argv = ["eval", "lm-eval", "--data", str(setup / "manifest.jsonl"), "--out", str(tmp_path)]
    assert main([*argv, "--model", str(setup / "model"), "--tasks", "mmlu"]) == 2
    assert main([*argv, "--model", str(tmp_path)]) == 2
