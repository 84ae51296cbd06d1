"""SnapPO's train stage: policy + rollout + rewards -> a new policy snapshot, off-policy.

The rollout was sampled by a frozen policy snapshot, whose per-token log-probabilities it
stores; every update here takes its importance ratios against those, so several optimizer
steps (micro-batches, epochs) can reuse one rollout, and a rollout from an older policy stays
usable. The new policy's key hashes the inputs (policy, rollout and reward keys, settings), so
an unchanged stage is skipped; the stage is deterministic on the CPU (seeded order), so a stage
killed midway, which publishes nothing, gives the same policy when run again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from training.post import losses
from training.post.policy import load_policy, response_logps
from training.post.snapshots import Snapshot, SnapshotStore, content_hash

# loss name -> (advantages from rewards, policy loss)
RL_LOSSES: dict[str, tuple[Callable, Callable]] = {
    "grpo": (losses.group_advantages, losses.grpo_loss),
    "gspo": (losses.group_advantages, losses.gspo_loss),
    "agapo": (losses.agapo_advantages, losses.agapo_loss),
}


@dataclass(frozen=True)
class TrainSettings:
    """One train stage's optimisation: which loss, how many passes, what step size."""

    loss: str = "gspo"
    learning_rate: float = 1e-5
    epochs: int = 1
    micro_batch: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in RL_LOSSES:
            raise ValueError(f"unknown RL loss {self.loss!r}; expected one of {sorted(RL_LOSSES)}")
        if self.learning_rate <= 0 or self.epochs < 1 or self.micro_batch < 1:
            raise ValueError("learning_rate must be > 0, epochs and micro_batch >= 1")


@dataclass(frozen=True)
class TrainStageResult:
    key: str
    computed: bool
    steps: int
    tokens: int
    seconds: float
    losses: tuple[float, ...]


def train_key(policy: str, rollout: str, reward: str, settings: TrainSettings) -> str:
    inputs = {"policy": policy, "rollout": rollout, "reward": reward}
    return content_hash({"stage": "train", **inputs, "settings": dataclasses.asdict(settings)})


def _inputs(store: SnapshotStore, rollout_key: str, reward_key: str) -> tuple[Snapshot, Snapshot]:
    rollout, scored = store.read("rollouts", rollout_key), store.read("rewards", reward_key)
    if scored.record["rollout"] != rollout_key:
        raise ValueError(
            f"rewards {reward_key} score rollout {scored.record['rollout']}, not {rollout_key}"
        )
    if "prompt_tokens" not in rollout.tensors:
        raise ValueError(f"rollout {rollout_key} has no prompt_tokens; the train stage needs them")
    return rollout, scored


def _optimise(
    model: torch.nn.Module,
    rollout: Snapshot,
    advantages: torch.Tensor,
    loss_fn: Callable,
    settings: TrainSettings,
) -> list[float]:
    """AdamW steps over shuffled micro-batches of the rollout's rows, ``epochs`` times."""
    t, group_size = rollout.tensors, rollout.record["group_size"]
    prompts, prompt_mask = (
        t[k].repeat_interleave(group_size, 0) for k in ("prompt_tokens", "prompt_mask")
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    order = torch.Generator().manual_seed(settings.seed)
    step_losses = []
    for _ in range(settings.epochs):
        for rows in torch.randperm(len(advantages), generator=order).split(settings.micro_batch):
            logps = response_logps(
                model, prompts[rows], prompt_mask[rows], t["tokens"][rows], t["mask"][rows]
            )
            loss = loss_fn(logps, t["logps"][rows], advantages[rows], t["mask"][rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_losses.append(loss.item())
    return step_losses


def run_train_stage(
    store: SnapshotStore,
    policy_key: str,
    rollout_key: str,
    reward_key: str,
    settings: TrainSettings = TrainSettings(),
) -> TrainStageResult:
    """Update the policy on one scored rollout and publish the result as a policy snapshot."""
    key = train_key(policy_key, rollout_key, reward_key, settings)
    if store.exists("policies", key):
        record = store.read("policies", key).record["origin"]
        return TrainStageResult(key, False, record["steps"], record["tokens"], 0.0, ())
    rollout, scored = _inputs(store, rollout_key, reward_key)
    advantage_fn, loss_fn = RL_LOSSES[settings.loss]
    advantages = advantage_fn(scored.tensors["rewards"], rollout.record["group_size"])
    torch.manual_seed(settings.seed)
    model = load_policy(store, policy_key).train()
    start = time.perf_counter()
    step_losses = _optimise(model, rollout, advantages, loss_fn, settings)
    seconds = time.perf_counter() - start
    tokens = int(rollout.tensors["mask"].sum().item()) * settings.epochs
    origin = {
        "stage": "train",
        "policy": policy_key,
        "rollout": rollout_key,
        "reward": reward_key,
        "settings": dataclasses.asdict(settings),
        "steps": len(step_losses),
        "tokens": tokens,
        "seconds": seconds,
        "losses": step_losses,
    }
    store.publish("policies", key, {"origin": origin}, model.save_pretrained)
    return TrainStageResult(key, True, len(step_losses), tokens, seconds, tuple(step_losses))
