"""Snapshots keyed by content hash; the reward stage does no work on an unchanged rollout."""

import numpy as np
import pytest
import torch

from training.post import rewards
from training.post.reward_stage import run_reward_stage
from training.post.rollouts import load_answer, write_rollout
from training.post.snapshots import SnapshotStore, content_hash, tensor_digest
from training.toyworld.scenes import Scene, render_scene

SCENE = Scene.from_attributes(
    [{"shape": "star", "colour": "yellow", "size": "big", "position": "top"}]
)
CALLS = []


@rewards.register("test_counted_exact_match")
def counted_exact_match(answer, meta):
    CALLS.append(answer)
    return rewards.get("exact_match")(answer, meta)


def _text_rollout(store, key, answers=("two", "one", "Two!", "three")):
    tokens = torch.arange(4 * 3).view(4, 3)
    return write_rollout(
        store,
        key,
        policy=content_hash("policy-0"),
        samples=[{"answer": "two"}, {"answer": "three"}],
        group_size=2,
        tokens=tokens,
        logps=-torch.rand(4, 3),
        mask=torch.ones(4, 3),
        answers=list(answers),
    )


def test_content_hash_ignores_key_order_and_sees_every_value():
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1, "b": [1, 2]}) != content_hash({"a": 1, "b": [2, 1]})
    x = torch.arange(6.0)
    assert tensor_digest(x) == tensor_digest(x.clone())
    assert tensor_digest(x) != tensor_digest(x.view(2, 3))
    assert tensor_digest(x) != tensor_digest(x.double())


def test_a_rollout_round_trips_text_images_and_speech(tmp_path):
    store = SnapshotStore(tmp_path)
    wave = np.sin(np.linspace(0, 100, 1600)).astype(np.float32) * 0.5
    answers = ["a big yellow star", render_scene(SCENE), (wave, 16000)]
    rollout = write_rollout(
        store,
        content_hash("mixed"),
        policy=content_hash("policy"),
        samples=[{"attributes": SCENE.to_meta()}],
        group_size=3,
        tokens=torch.zeros(3, 2, dtype=torch.long),
        logps=torch.full((3, 2), -0.5),
        mask=torch.ones(3, 2),
        answers=answers,
    )
    assert load_answer(rollout, 0) == "a big yellow star"
    assert np.array_equal(np.asarray(load_answer(rollout, 1)), np.asarray(answers[1]))
    back, rate = load_answer(rollout, 2)
    assert rate == 16000 and np.allclose(back, wave, atol=1e-6)
    assert torch.equal(rollout.tensors["logps"], torch.full((3, 2), -0.5))


def test_rerunning_the_reward_stage_on_an_unchanged_rollout_does_no_work(tmp_path):
    store = SnapshotStore(tmp_path)
    rollout_key = content_hash({"policy": "p0", "prompts": "vqa-novel", "seed": 0})
    _text_rollout(store, rollout_key)
    weights = {"test_counted_exact_match": 1.0}
    CALLS.clear()
    first = run_reward_stage(store, rollout_key, weights)
    assert first.computed and CALLS == ["two", "one", "Two!", "three"]
    assert first.mean == 0.5
    written = store.folder("rewards", first.key) / "record.json"
    stamp = written.stat().st_mtime_ns
    assert store.read("rewards", first.key).tensors["rewards"].tolist() == [1.0, 0.0, 0.0, 1.0]

    again = run_reward_stage(store, rollout_key, weights)
    assert again.key == first.key and not again.computed and again.mean == 0.5
    assert len(CALLS) == 4  # no reward function was called
    assert written.stat().st_mtime_ns == stamp


def test_a_new_rollout_or_a_new_reward_spec_is_scored_afresh(tmp_path):
    store = SnapshotStore(tmp_path)
    first_key, second_key = content_hash("rollout-a"), content_hash("rollout-b")
    _text_rollout(store, first_key)
    _text_rollout(store, second_key, answers=("one", "one", "three", "three"))
    base = run_reward_stage(store, first_key, {"exact_match": 1.0})
    other_rollout = run_reward_stage(store, second_key, {"exact_match": 1.0})
    other_spec = run_reward_stage(store, first_key, {"exact_match": 1.0, "format": 0.1})
    assert other_rollout.computed and other_spec.computed
    assert len({base.key, other_rollout.key, other_spec.key}) == 3
    assert store.read("rewards", other_rollout.key).record["rewards"] == [0.0, 0.0, 1.0, 1.0]


def test_the_store_refuses_bad_keys_kinds_and_missing_artefacts(tmp_path):
    store = SnapshotStore(tmp_path)
    with pytest.raises(ValueError, match="unknown snapshot kind"):
        store.folder("checkpoints", content_hash("x"))
    with pytest.raises(ValueError, match="not a hex content hash"):
        store.folder("rollouts", "../escape")
    with pytest.raises(ValueError, match="run its stage first"):
        run_reward_stage(store, content_hash("never generated"), {"exact_match": 1.0})
    with pytest.raises(ValueError, match="unknown reward"):
        run_reward_stage(store, content_hash("never generated"), {"no_such_reward": 1.0})


def test_a_rollout_with_mismatched_rows_is_refused(tmp_path):
    with pytest.raises(ValueError, match="2 prompts x 2 responses = 4 rows"):
        _text_rollout(SnapshotStore(tmp_path), content_hash("short"), answers=("two", "one"))


def test_no_half_written_artefact_is_left_visible(tmp_path):
    store = SnapshotStore(tmp_path)
    key = content_hash("rollout")
    with pytest.raises(ValueError, match="plain, unreserved file name"):
        store.write("rollouts", key, {"x": 1}, media={"../record.json": b"x"})
    assert not store.exists("rollouts", key)
