"""The train stage on a micro causal LM: off-policy updates from snapshots, skipped when
unchanged, and a stage killed with SIGKILL publishes nothing and resumes from its last
optimizer-step checkpoint to the policy an uninterrupted run gives."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from training.post.policy import load_policy, response_logps, save_policy
from training.post.reward_stage import run_reward_stage
from training.post.rollouts import write_rollout
from training.post.snapshots import SnapshotStore, content_hash
from training.post.train_stage import TrainSettings, run_train_stage

VOCAB = 16


def _micro_policy():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    return AutoModelForCausalLM.from_config(config).eval()


def _scored_rollout(store, model, answers):
    """Two prompts x two responses, sampled 'by' ``model``; answers decide the rewards."""
    prompts = torch.tensor([[0, 3, 4], [5, 6, 7]])
    prompt_mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    tokens = torch.tensor([[8, 9, 1], [10, 11, 12], [13, 14, 0], [1, 2, 3]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]])
    rows = (prompts.repeat_interleave(2, 0), prompt_mask.repeat_interleave(2, 0))
    with torch.no_grad():
        logps = response_logps(model, *rows, tokens, mask)
    key = content_hash({"rollout": answers})
    write_rollout(
        store,
        key,
        policy=save_policy(store, model),
        samples=[{"answer": "yes"}, {"answer": "no"}],
        group_size=2,
        tokens=tokens,
        logps=logps,
        mask=mask,
        answers=answers,
        prompt_tokens=prompts,
        prompt_mask=prompt_mask,
    )
    return key, run_reward_stage(store, key, {"exact_match": 1.0}).key


def _sequence_logps(model, store, rollout_key):
    t = store.read("rollouts", rollout_key).tensors
    with torch.no_grad():
        logps = response_logps(
            model,
            t["prompt_tokens"].repeat_interleave(2, 0),
            t["prompt_mask"].repeat_interleave(2, 0),
            t["tokens"],
            t["mask"],
        )
    return (logps * t["mask"]).sum(-1)


def test_response_logps_score_each_token_given_what_precedes_it():
    model = _micro_policy()
    prompt, response = torch.tensor([[2, 3]]), torch.tensor([[4, 5, 6]])
    logps = response_logps(model, prompt, torch.ones(1, 2), response, torch.ones(1, 3))
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=torch.tensor([[2, 3, 4, 5, 6]])).logits, -1)
    expected = torch.stack([full[0, 1, 4], full[0, 2, 5], full[0, 3, 6]])
    assert torch.allclose(logps[0], expected, atol=1e-5)


@pytest.mark.parametrize(
    "loss, steps",
    [("grpo", 4), ("gspo", 4), ("agapo", 4), ("dpo", 2), ("simper", 2), ("grouper", 2)],
)
def test_a_train_stage_moves_the_policy_towards_rewarded_responses(tmp_path, loss, steps):
    """4 responses (RL units), 2 correct-incorrect pairs or 2 groups, 2 per step, 2 epochs."""
    store = SnapshotStore(tmp_path)
    model = _micro_policy()
    rollout_key, reward_key = _scored_rollout(store, model, ["yes", "maybe", "so", "no"])
    policy_key = store.read("rollouts", rollout_key).record["policy"]
    before = _sequence_logps(model, store, rollout_key)
    settings = TrainSettings(loss=loss, learning_rate=0.02, epochs=2, micro_batch=2, beta=1.0)
    result = run_train_stage(store, policy_key, rollout_key, reward_key, settings)
    assert result.computed and result.steps == steps and result.tokens == 2 * 11
    change = _sequence_logps(load_policy(store, result.key), store, rollout_key) - before
    assert change[0] > 0 and change[3] > 0  # the right answers became likelier
    assert change[1] < 0 and change[2] < 0  # the wrong ones less likely


def test_rerunning_an_unchanged_train_stage_is_skipped(tmp_path):
    store = SnapshotStore(tmp_path)
    model = _micro_policy()
    rollout_key, reward_key = _scored_rollout(store, model, ["yes", "maybe", "so", "no"])
    policy_key = store.read("rollouts", rollout_key).record["policy"]
    first = run_train_stage(store, policy_key, rollout_key, reward_key)
    weights = store.folder("policies", first.key) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = run_train_stage(store, policy_key, rollout_key, reward_key)
    assert again.key == first.key and not again.computed and again.steps == first.steps
    assert weights.stat().st_mtime_ns == stamp


def test_rewards_of_another_rollout_are_refused(tmp_path):
    store = SnapshotStore(tmp_path)
    model = _micro_policy()
    first = _scored_rollout(store, model, ["yes", "maybe", "so", "no"])
    second = _scored_rollout(store, model, ["no", "no", "no", "no"])
    policy = store.read("rollouts", first[0]).record["policy"]
    with pytest.raises(ValueError, match="score rollout"):
        run_train_stage(store, policy, first[0], second[1])
    with pytest.raises(ValueError, match="unknown loss 'ppo'"):
        TrainSettings(loss="ppo")


def test_preference_stages_refuse_a_rollout_with_no_pair(tmp_path):
    store = SnapshotStore(tmp_path)
    rollout, rewards = _scored_rollout(store, _micro_policy(), ["no", "no", "yes", "yes"])
    policy = store.read("rollouts", rollout).record["policy"]
    with pytest.raises(ValueError, match="no pair can be formed"):
        run_train_stage(store, policy, rollout, rewards, TrainSettings(loss="dpo"))


KILLED_RUN = """
import sys, time, torch
from training.post.snapshots import SnapshotStore
from training.post.train_stage import TrainSettings, run_train_stage

store, policy, rollout, rewards, flag = sys.argv[1:6]
real_step, calls = torch.optim.AdamW.step, []

def step_then_wait(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 5:  # past the checkpoint of step 4: tell the test, wait for its SIGKILL
        open(flag, "w").close()
        time.sleep(600)
    return real_step(self, *args, **kwargs)

torch.optim.AdamW.step = step_then_wait
settings = TrainSettings(loss="gspo", learning_rate=0.01, epochs=3, micro_batch=2)
run_train_stage(SnapshotStore(store), policy, rollout, rewards, settings, checkpoint_every=2)
"""


def test_a_train_stage_killed_with_sigkill_resumes_at_its_checkpoint_to_the_same_policy(tmp_path):
    """6 optimizer steps, a checkpoint every 2: killed in step 5, it resumes at step 4."""
    settings = TrainSettings(loss="gspo", learning_rate=0.01, epochs=3, micro_batch=2)
    whole_store, killed_store = (
        SnapshotStore(tmp_path / "whole"),
        SnapshotStore(tmp_path / "killed"),
    )
    keys = _scored_rollout(whole_store, _micro_policy(), ["yes", "maybe", "so", "no"])
    assert _scored_rollout(killed_store, _micro_policy(), ["yes", "maybe", "so", "no"]) == keys
    policy = whole_store.read("rollouts", keys[0]).record["policy"]
    whole = run_train_stage(whole_store, policy, *keys, settings, checkpoint_every=2)
    assert whole.steps == 6 and whole.resumed_from == 0

    flag = tmp_path / "in-step-5"
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(killed_store.root), policy, *keys, str(flag)],
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
    )
    try:
        while not flag.exists():
            assert child.poll() is None, "the training process ended before it was killed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not killed_store.exists("policies", whole.key)
    progress = killed_store.progress_folder("policies", whole.key)
    assert json.loads((progress / "state.json").read_text())["step"] == 4

    again = run_train_stage(killed_store, policy, *keys, settings, checkpoint_every=2)
    assert again.key == whole.key and again.computed and again.resumed_from == 4
    assert again.losses == whole.losses  # the 4 steps before the kill kept their record
    a = load_policy(whole_store, whole.key).state_dict()
    b = load_policy(killed_store, again.key).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not progress.exists()  # published: the checkpoint is gone


def test_a_negative_checkpoint_cadence_is_refused(tmp_path):
    store = SnapshotStore(tmp_path)
    rollout, rewards = _scored_rollout(store, _micro_policy(), ["yes", "maybe", "so", "no"])
    policy = store.read("rollouts", rollout).record["policy"]
    with pytest.raises(ValueError, match="checkpoint_every must be >= 0"):
        run_train_stage(store, policy, rollout, rewards, checkpoint_every=-1)
