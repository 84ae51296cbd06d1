"""``omni rl loop``: rounds of generate -> reward -> train, each stage through the store.

Each round's policy is the previous round's train output, so a loop re-run with the same
inputs finds every artefact and does no work, and a loop stopped anywhere resumes at the first
stage whose artefact is missing (a train stage, at its last optimizer-step checkpoint). The figures of each round (samples/s in generate, rewards/s,
training tokens/s, and the mean reward) go into the result, for the cost note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from training.post.generate_stage import GenerateSettings, Prompt, Sampler, run_generate_stage
from training.post.reward_stage import run_reward_stage
from training.post.snapshots import SnapshotStore
from training.post.train_stage import TrainSettings, run_train_stage


@dataclass
class LoopRound:
    policy: str
    rollout: str
    rewards: str
    next_policy: str
    computed: dict[str, bool]
    mean_reward: float
    figures: dict[str, float] = field(default_factory=dict)


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def _round_prompts(prompts: Sequence[Prompt], count: int | None, index: int) -> list[Prompt]:
    if count is None:
        return list(prompts)
    return [prompts[(index * count + i) % len(prompts)] for i in range(count)]


def run_loop(
    store: SnapshotStore,
    policy_key: str,
    prompts: Sequence[Prompt],
    sampler: Sampler,
    reward_weights: Mapping[str, float],
    rounds: int,
    generate: GenerateSettings = GenerateSettings(),
    train: TrainSettings = TrainSettings(),
    checkpoint_every: int = 10,
    prompts_per_round: int | None = None,
) -> list[LoopRound]:
    """Run ``rounds`` rounds from ``policy_key``; returns one record per round.
    ``checkpoint_every``: the train stage's checkpoint cadence (``run_train_stage``).
    ``prompts_per_round``: each round samples the next that many prompts of ``prompts``
    (wrapping around), so rounds see fresh prompts instead of fitting the same ones again;
    None: every round samples all of them."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1 (got {rounds})")
    if prompts_per_round is not None and not 1 <= prompts_per_round <= len(prompts):
        raise ValueError(
            f"prompts_per_round must lie in 1..{len(prompts)} (the prompts given), "
            f"got {prompts_per_round}"
        )
    history = []
    for index in range(rounds):
        chosen = _round_prompts(prompts, prompts_per_round, index)
        sampled = run_generate_stage(store, policy_key, chosen, sampler, generate)
        scored = run_reward_stage(store, sampled.key, reward_weights)
        trained = run_train_stage(
            store, policy_key, sampled.key, scored.key, train, checkpoint_every
        )
        values = store.read("rewards", scored.key).tensors["rewards"]
        figures = {
            "generate_samples_per_s": _rate(sampled.responses, sampled.seconds),
            "rewards_per_s": _rate(scored.responses, scored.seconds),
            "train_tokens_per_s": _rate(trained.tokens, trained.seconds),
            # where the time goes (0 for a stage found done)
            "generate_sampling_s": sampled.sampling_seconds,
            "generate_scoring_s": sampled.seconds - sampled.sampling_seconds,
            "reward_s": scored.seconds,
            "train_s": trained.seconds,
        }
        computed = {"generate": sampled.computed, "reward": scored.computed}
        computed["train"] = trained.computed
        keys = (policy_key, sampled.key, scored.key, trained.key)
        history.append(LoopRound(*keys, computed, float(values.mean()), figures))
        policy_key = trained.key
    return history
