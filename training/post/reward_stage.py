"""SnapPO's reward stage: rollout snapshot + reward spec -> cached reward snapshot.

The reward snapshot's key hashes the rollout's key with the reward spec's fingerprint (names,
weights and the source of each reward function), so re-running on an unchanged rollout with
an unchanged spec finds the artefact and scores nothing; a new rollout, a new weight or an
edited reward function gives a new key and is scored afresh.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from training.post import rewards
from training.post.rollouts import load_answer
from training.post.snapshots import SnapshotStore, content_hash


@dataclass(frozen=True)
class RewardStageResult:
    """Where the rewards are, whether this call computed them (False: cached), and their mean
    (a held-out rollout's mean reward is the verifiable score of its policy)."""

    key: str
    computed: bool
    responses: int
    seconds: float
    mean: float


def reward_key(rollout_key: str, weights: Mapping[str, float]) -> str:
    spec = {"stage": "reward", "rollout": rollout_key, "reward": rewards.fingerprint(weights)}
    return content_hash(spec)


def run_reward_stage(
    store: SnapshotStore, rollout_key: str, weights: Mapping[str, float]
) -> RewardStageResult:
    """Score every response of the rollout with ``mix(weights)``, unless already done."""
    score = rewards.mix(weights)  # refuses unknown reward names before any work
    key = reward_key(rollout_key, weights)
    if store.exists("rewards", key):
        values = store.read("rewards", key).record["rewards"]
        return RewardStageResult(key, False, len(values), 0.0, sum(values) / len(values))
    rollout = store.read("rollouts", rollout_key)
    group_size = rollout.record["group_size"]
    samples = rollout.record["samples"]
    start = time.perf_counter()
    values = [
        float(score(load_answer(rollout, index), samples[index // group_size]))
        for index in range(len(rollout.record["answers"]))
    ]
    seconds = time.perf_counter() - start
    record = {
        "rollout": rollout_key,
        "reward": rewards.fingerprint(weights),
        "rewards": values,
        "seconds": seconds,
    }
    store.write("rewards", key, record, {"rewards": torch.tensor(values)})
    return RewardStageResult(key, True, len(values), seconds, sum(values) / len(values))
