"""``omni data agentic``: tool episodes that replay to success on their simulators, safety
prompts whose reference responses have their category's type, and a micro stage training on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.agentic import (
    NOVEL_TOOLS,
    TOOL_TASKS,
    UserSimulator,
    episode_success,
    generate,
    response_type,
    run_virtual,
)
from training.agentic.safety import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
TASK_NAMES = ["tool_call", "tool_multi", "tool_dialogue", "tool_draw", "safety", "safety_benign"]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = generate(tmp_path_factory.mktemp("agentic"), 400, seed=3)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _tool_names(record):
    return {t["function"]["name"] for t in record.get("tools", [])}


def test_generation_is_deterministic_and_writes_every_task_and_split(tmp_path, records):
    again = generate(tmp_path, 400, seed=3).read_text(encoding="utf-8")
    assert again.splitlines() == [json.dumps(r, ensure_ascii=False) for r in records]
    assert {r["task"] for r in records} == set(TASK_NAMES)
    splits = {(r["task"] in TOOL_TASKS, r["split"]) for r in records}
    assert splits == {
        (True, "train"),
        (True, "test"),
        (True, "novel-tool"),
        (False, "train"),
        (False, "test"),
    }
    assert {r["meta"]["lang"] for r in records} == {"en", "ko"}


def test_novel_tools_appear_only_in_the_novel_tool_split(records):
    for record in records:
        novel = bool(_tool_names(record) & set(NOVEL_TOOLS))
        assert novel == (record["split"] == "novel-tool"), record["id"]


def _final_answer(record):
    return record["turns"][-1]["segments"][0]["text"]


def test_every_episode_replays_on_its_simulator_to_success(records):
    for record in (r for r in records if r["task"] in TOOL_TASKS):
        meta = record["meta"]
        calls = [(c["name"], c["arguments"]) for c in meta["calls"]]
        results = [
            s["content"] for t in record["turns"] if t["role"] == "tool" for s in t["segments"]
        ]
        replayed = [
            json.dumps(run_virtual(n, a, meta["state"]), ensure_ascii=False) for n, a in calls
        ]
        assert replayed == results, record["id"]
        assert episode_success(meta, calls, _final_answer(record)), record["id"]
        assert set(n for n, _ in calls) <= _tool_names(record)


def test_a_wrong_answer_or_drawing_fails_the_success_check(records):
    counted = next(r for r in records if r["meta"].get("kind") == "tool_multi")
    meta, calls = counted["meta"], [(c["name"], c["arguments"]) for c in counted["meta"]["calls"]]
    assert not episode_success(meta, calls, "I do not know.")
    drawing = next(r for r in records if r["task"] == "tool_draw")
    assert not episode_success(drawing["meta"], [("generate_image", {"prompt": "a tiny dog"})], "")
    assert not episode_success({"kind": "tool_call", "key": ["2"]}, [], "There are 12.")


def test_dialogue_users_reveal_the_request_over_several_turns(records):
    dialogue = next(r for r in records if r["task"] == "tool_dialogue")
    reveals = dialogue["meta"]["reveals"]
    user_turns = [t for t in dialogue["turns"] if t["role"] == "user"]
    assert len(user_turns) == 1 + len(reveals) >= 2
    simulator = UserSimulator(reveals)
    assert [simulator.reply("which?") for _ in reveals] == reveals
    assert simulator.reply("anything else?") is None


def test_reference_safety_responses_have_their_category_type(records):
    expected = {c.name: c.response for c in CATEGORIES}
    safety = [r for r in records if r["task"] in ("safety", "safety_benign")]
    assert {r["meta"]["category"] for r in safety} == set(expected)
    for record in safety:
        kind = (
            "comply" if record["task"] == "safety_benign" else expected[record["meta"]["category"]]
        )
        assert record["meta"]["expected"] == kind
        assert response_type(_final_answer(record)) == kind, record["id"]


def test_the_response_type_rules_read_both_languages():
    assert response_type("I can't help with that. Instead, I can help you plan.") == "refuse"
    assert response_type("그건 도와드릴 수 없어요. 대신 다른 방법을 알려 드릴게요.") == "refuse"
    assert response_type("I cannot help with that.") == "bare_refusal"
    assert response_type("안전 안내: 의사에게 물어보세요.") == "safe_completion"
    assert response_type("Add honey, one spoon at a time.") == "comply"


def test_simulators_turn_bad_arguments_into_error_results():
    assert run_virtual("calculator", {"expression": "3 * (4 + 2)"}, {}) == {"result": 18}
    assert "error" in run_virtual("calculator", {"expression": "__import__('os')"}, {})
    assert "error" in run_virtual(
        "convert_units", {"value": 1, "from_unit": "kg", "to_unit": "m"}, {}
    )
    assert run_virtual("convert_units", {"value": 3, "from_unit": "km", "to_unit": "m"}, {}) == {
        "value": 3000
    }
    assert "error" in run_virtual("describe_object", {"position": "top"}, {"objects": []})


def test_a_micro_stage_trains_on_the_agentic_manifest_end_to_end(tmp_path):
    import yaml

    from omni.cli import main
    from omni.presets import build_micro
    from omni.processor import IGNORE_INDEX
    from training.curriculum import Recipe
    from training.trainer import build_packer

    manifest = generate(tmp_path / "agentic", 60, seed=1)
    stage = yaml.safe_load((ROOT / "configs" / "sft-1-conversation.yaml").read_text())
    stage["mixture"] = [
        {"manifest": "agentic", "weight": 1.0, "split": "train", "tasks": TASK_NAMES}
    ]
    stage.update(steps=2, rows_per_step=2, micro_rows=1, warmup_steps=1, checkpoint_every=2)
    (tmp_path / "stage.yaml").write_text(yaml.safe_dump(stage))
    curriculum = {"model": {"preset": "micro-llama"}, "stages": ["stage.yaml"]}
    (tmp_path / "curriculum.yaml").write_text(yaml.safe_dump(curriculum))
    out = tmp_path / "run"
    argv = ["train", "lm", "--recipe", str(tmp_path / "curriculum.yaml"), "--out", str(out)]
    assert (
        main([*argv, "--no-progress", "--on-error", "raise", "--data", f"agentic={manifest}"]) == 0
    )
    assert (out / stage["name"] / "final" / "model.safetensors").is_file()
    losses = (out / stage["name"] / "metrics.csv").read_text().splitlines()
    assert len(losses) == 3  # header + one row per step

    _, processor = build_micro("micro-llama")
    recipe = Recipe.from_dict(stage)
    batch = build_packer(recipe, {"agentic": str(manifest)}, processor, None).next_batch(4)
    trained = batch.input_ids[batch.labels != IGNORE_INDEX].tolist()
    assert "<tool_call>" in processor.tokenizer.decode(trained)


def test_the_data_command_writes_the_manifest_and_counts_it(tmp_path, capsys):
    from omni.cli import main

    assert main(["data", "agentic", "--out", str(tmp_path), "--n", "30", "--seed", "2"]) == 0
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 30
    assert "wrote 30 samples" in capsys.readouterr().out
    assert main(["data", "agentic", "--out", str(tmp_path), "--n", "0"]) == 2
