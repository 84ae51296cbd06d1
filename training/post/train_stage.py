"""SnapPO's train stage: policy + rollout + rewards -> a new policy snapshot, off-policy.

One stage serves RL (GRPO, GSPO, AGAPO) and preference learning (DPO, SimPER, GrouPER): the
objective (``objectives``) decides which rollout rows it compares; a round of iterative DPO is
generate -> reward -> this stage with ``loss="dpo"``.

The rollout was sampled by a frozen policy snapshot, whose per-token log-probabilities it
stores; every update here takes its importance ratios against those, so several optimizer
steps (micro-batches, epochs) can reuse one rollout, and a rollout from an older policy stays
usable. The new policy's key hashes the inputs (policy, rollout and reward keys, settings), so
an unchanged stage is skipped.

A long stage checkpoints every ``checkpoint_every`` optimizer steps (the shared
``omni.common.loop.TrainLoop``: weights, AdamW moments, the global torch generator and the
losses so far) into the store's progress folder for its key; a stage killed midway, even with
SIGKILL, publishes nothing and resumes from its last checkpoint when run again, to the policy
an uninterrupted run gives, bit for bit on the CPU. The data order needs no saved state: it is
a pure function of the seed (``step_batches``). The learning rate is constant, so there is no
schedule to resume.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from omni.common.loop import TrainLoop
from training.post.objectives import CLIPPED_LOSSES, OBJECTIVES, Objective
from training.post.policy import (
    load_policy,
    media_for_rows,
    prompt_media,
    publish_policy,
    response_logps,
)
from training.post.snapshots import Snapshot, SnapshotStore, content_hash


@dataclass(frozen=True)
class TrainSettings:
    """One train stage's optimisation: which objective, how many passes, what step size.
    ``micro_batch`` counts units (responses, pairs or groups); ``beta`` and ``nll_weight`` are
    DPO's; ``correct_threshold`` splits right from wrong for AGAPO and the pairing;
    ``clip_range`` (low, high) is the ratio's clipping for ``grpo`` and ``gspo``, None for
    each loss's own (GRPO 0.2/0.2; GSPO 3e-4/4e-4, the GSPO paper's range)."""

    loss: str = "gspo"
    learning_rate: float = 1e-5
    epochs: int = 1
    micro_batch: int = 8
    seed: int = 0
    beta: float = 0.1
    nll_weight: float = 0.0
    correct_threshold: float = 0.5
    clip_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.loss not in OBJECTIVES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {sorted(OBJECTIVES)}")
        if self.learning_rate <= 0 or self.epochs < 1 or self.micro_batch < 1:
            raise ValueError("learning_rate must be > 0, epochs and micro_batch >= 1")
        if self.clip_range is not None:
            if self.loss not in CLIPPED_LOSSES:
                raise ValueError(
                    f"clip_range applies to {sorted(CLIPPED_LOSSES)}; {self.loss!r} has no "
                    "clipped ratio"
                )
            low, high = self.clip_range
            if not (0 < low < 1 and high > 0):
                raise ValueError(
                    f"clip_range needs 0 < low < 1 and high > 0, got {self.clip_range}"
                )
            object.__setattr__(self, "clip_range", (float(low), float(high)))


@dataclass(frozen=True)
class TrainStageResult:
    key: str
    computed: bool
    steps: int
    tokens: int
    seconds: float
    losses: tuple[float, ...]
    resumed_from: int = 0  # the optimizer step a killed run's checkpoint let this one start at


def train_key(policy: str, rollout: str, reward: str, settings: TrainSettings) -> str:
    """Unset options (None) are left out, so an option added later keeps earlier keys."""
    inputs = {"policy": policy, "rollout": rollout, "reward": reward}
    chosen = {k: v for k, v in dataclasses.asdict(settings).items() if v is not None}
    return content_hash({"stage": "train", **inputs, "settings": chosen})


def _inputs(store: SnapshotStore, rollout_key: str, reward_key: str) -> tuple[Snapshot, Snapshot]:
    rollout, scored = store.read("rollouts", rollout_key), store.read("rewards", reward_key)
    if scored.record["rollout"] != rollout_key:
        raise ValueError(
            f"rewards {reward_key} score rollout {scored.record['rollout']}, not {rollout_key}"
        )
    if "prompt_tokens" not in rollout.tensors:
        raise ValueError(f"rollout {rollout_key} has no prompt_tokens; the train stage needs them")
    return rollout, scored


def step_batches(units: int, settings: TrainSettings) -> list[torch.Tensor]:
    """The units of every optimizer step, in order: one seeded shuffle per epoch, cut into
    micro-batches. A pure function of the seed, so a resumed stage recomputes it."""
    order = torch.Generator().manual_seed(settings.seed)
    return [
        batch
        for _ in range(settings.epochs)
        for batch in torch.randperm(units, generator=order).split(settings.micro_batch)
    ]


def _optimise(
    model: torch.nn.Module,
    rollout: Snapshot,
    units: tuple[torch.Tensor, torch.Tensor],
    objective: Objective,
    settings: TrainSettings,
    progress: Path,
    checkpoint_every: int,
) -> TrainLoop:
    """AdamW steps over shuffled micro-batches of units, ``epochs`` times, resumed from (and
    checkpointed into) ``progress``; the loop's ``notes["losses"]`` holds every step's loss."""
    t, group_size = rollout.tensors, rollout.record["group_size"]
    prompts, prompt_mask = (
        t[k].repeat_interleave(group_size, 0) for k in ("prompt_tokens", "prompt_mask")
    )
    chats = rollout.record.get("messages") or [None] * len(rollout.record["samples"])
    per_prompt = [prompt_media(model, chat) for chat in chats]
    unit_rows, unit_weights = units
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    batches = step_batches(len(unit_rows), settings)
    loop = TrainLoop(
        progress,
        len(batches),
        {"policy": model},
        {"policy": optimizer},
        rngs={"torch": torch.default_generator},  # dropout, if the policy has any
        checkpoint_every=checkpoint_every,
        notes={"losses": []},
        desc=f"train {settings.loss}",
    )
    for step in loop:
        batch = batches[step]
        rows = unit_rows[batch].flatten()
        shape = (*unit_rows[batch].shape, -1)
        media = media_for_rows(per_prompt, (rows // group_size).tolist())
        logps = response_logps(
            model, prompts[rows], prompt_mask[rows], t["tokens"][rows], t["mask"][rows], media
        )
        loss = objective.loss(
            logps.view(shape),
            t["logps"][rows].view(shape),
            t["mask"][rows].view(shape),
            unit_weights[batch],
            settings,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loop.notes["losses"].append(loss.item())
    return loop


def run_train_stage(
    store: SnapshotStore,
    policy_key: str,
    rollout_key: str,
    reward_key: str,
    settings: TrainSettings = TrainSettings(),
    checkpoint_every: int = 10,
) -> TrainStageResult:
    """Update the policy on one scored rollout and publish the result as a policy snapshot.
    ``checkpoint_every``: optimizer steps between resumable checkpoints (0: only at the end);
    it does not change the result, so it is not part of the key."""
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0 (0: none midway), got {checkpoint_every}")
    key = train_key(policy_key, rollout_key, reward_key, settings)
    progress = store.progress_folder("policies", key)
    if store.exists("policies", key):
        shutil.rmtree(progress, ignore_errors=True)  # left by a run killed after publishing
        record = store.read("policies", key).record["origin"]
        return TrainStageResult(key, False, record["steps"], record["tokens"], 0.0, ())
    rollout, scored = _inputs(store, rollout_key, reward_key)
    objective = OBJECTIVES[settings.loss]
    units = objective.units(scored.tensors["rewards"], rollout.record["group_size"], settings)
    if len(units[0]) == 0:
        raise ValueError(
            f"rollout {rollout_key} gives {settings.loss} nothing to train on: every group is "
            "all right or all wrong, so no pair can be formed"
        )
    torch.manual_seed(settings.seed)
    model = load_policy(store, policy_key).train()
    start = time.perf_counter()
    loop = _optimise(model, rollout, units, objective, settings, progress, checkpoint_every)
    seconds = time.perf_counter() - start
    step_losses = loop.notes["losses"]
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
    publish_policy(store, key, model, origin, store.folder("policies", policy_key))
    shutil.rmtree(progress, ignore_errors=True)
    losses = tuple(step_losses)
    return TrainStageResult(key, True, len(step_losses), tokens, seconds, losses, loop.start)
