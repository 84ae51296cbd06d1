"""Generate -> reward -> train rounds on a micro causal LM, all through the snapshot store."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from training.post.generate_stage import (
    GenerateSettings,
    Prompt,
    causal_lm_sampler,
    run_generate_stage,
)
from training.post.loop import run_loop
from training.post.policy import load_policy, response_logps, save_policy
from training.post.snapshots import SnapshotStore
from training.post.train_stage import TrainSettings

WORDS = ["<eos>", "yes", "no", "red", "blue", "one", "two", "is", "it", "?"]
EOS = 0


def decode(ids):
    return " ".join(WORDS[i] for i in ids if i != EOS)


SAMPLER = causal_lm_sampler(decode, max_new_tokens=3, eos_id=EOS)
PROMPTS = [
    Prompt([7, 8, 3, 9], {"answer": "yes"}),
    Prompt([8, 4, 9], {"answer": "no"}),
]


def _store_with_policy(tmp_path):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    store = SnapshotStore(tmp_path)
    return store, save_policy(store, AutoModelForCausalLM.from_config(config))


def test_generate_saves_g_samples_per_prompt_with_the_policys_own_log_probs(tmp_path):
    store, policy = _store_with_policy(tmp_path)
    settings = GenerateSettings(group_size=4, seed=3)
    result = run_generate_stage(store, policy, PROMPTS, SAMPLER, settings)
    rollout = store.read("rollouts", result.key)
    t = rollout.tensors
    assert result.computed and t["tokens"].shape[0] == 8 and t["prompt_tokens"].shape == (2, 4)
    assert rollout.record["samples"] == [p.meta for p in PROMPTS]
    answers = [a["text"] for a in rollout.record["answers"]]
    assert answers == [decode(row[m.bool()].tolist()) for row, m in zip(t["tokens"], t["mask"])]
    assert t["prompt_mask"][1].tolist() == [0, 1, 1, 1]  # left padding
    with torch.no_grad():
        again = response_logps(
            load_policy(store, policy),
            t["prompt_tokens"].repeat_interleave(4, 0),
            t["prompt_mask"].repeat_interleave(4, 0),
            t["tokens"],
            t["mask"],
        )
    assert torch.allclose(again * t["mask"], t["logps"] * t["mask"], atol=1e-5)
    rerun = run_generate_stage(store, policy, PROMPTS, SAMPLER, settings)
    assert rerun.key == result.key and not rerun.computed
    other_seed = run_generate_stage(store, policy, PROMPTS, SAMPLER, GenerateSettings(4, seed=4))
    assert other_seed.key != result.key


def test_a_loop_chains_rounds_and_a_rerun_does_no_work(tmp_path):
    store, policy = _store_with_policy(tmp_path)
    generate = GenerateSettings(group_size=4)
    train = TrainSettings(loss="agapo", learning_rate=0.01, micro_batch=4)
    first = run_loop(store, policy, PROMPTS, SAMPLER, {"exact_match": 1.0}, 2, generate, train)
    assert [r.policy for r in first] == [policy, first[0].next_policy]
    assert all(all(r.computed.values()) for r in first)
    assert all(r.figures["generate_samples_per_s"] > 0 for r in first)
    assert all(0 < r.figures["generate_sampling_s"] <= sum(r.figures.values()) for r in first)
    assert all(0.0 <= r.mean_reward <= 1.0 for r in first)

    again = run_loop(store, policy, PROMPTS, SAMPLER, {"exact_match": 1.0}, 2, generate, train)
    assert [r.next_policy for r in again] == [r.next_policy for r in first]
    assert not any(any(r.computed.values()) for r in again)


def test_rounds_can_sample_fresh_prompts_in_turn(tmp_path):
    store, policy = _store_with_policy(tmp_path)
    generate = GenerateSettings(group_size=2)
    train = TrainSettings(loss="gspo", learning_rate=0.01, micro_batch=4)
    weights = {"exact_match": 1.0}
    one = PROMPTS[:1]
    rounds = run_loop(store, policy, PROMPTS, SAMPLER, weights, 3, generate, train, 10, 1)
    for index, record in enumerate(rounds):
        sampled = store.read("rollouts", record.rollout).tensors["prompt_tokens"]
        expected = PROMPTS[index % len(PROMPTS)]
        assert sampled.shape[0] == 1  # one prompt a round
        assert sampled[0, -len(expected.ids) :].tolist() == list(expected.ids)
    alone = run_loop(store, policy, one, SAMPLER, weights, 1, generate, train)
    assert alone[0].rollout == rounds[0].rollout  # the first round sampled the first prompt
    with pytest.raises(ValueError, match="prompts_per_round must lie in 1..2"):
        run_loop(store, policy, PROMPTS, SAMPLER, weights, 1, generate, train, 10, 3)


def test_bad_loop_inputs_are_refused(tmp_path):
    store, policy = _store_with_policy(tmp_path)
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        run_loop(store, policy, PROMPTS, SAMPLER, {"exact_match": 1.0}, 0)
    with pytest.raises(ValueError, match="group_size must be at least 2"):
        GenerateSettings(group_size=1)
    with pytest.raises(ValueError, match="at least one prompt"):
        run_generate_stage(store, policy, [], SAMPLER)
