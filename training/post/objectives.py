"""What the train stage optimises: each loss of ``losses`` bound to the rows it compares.

An objective turns a scored rollout into training *units*, each a fixed number of rollout rows
with a weight per row, and scores a micro-batch of units:
- RL (``grpo``, ``gspo``, ``agapo``): a unit is one response, weighted by its advantage;
- pairs (``dpo``, ``simper``): a unit is (correct, incorrect) responses to one prompt, as
  iterative DPO pairs them (Pang et al. 2024; Solar Open's phase B); DPO's reference is the
  generating policy, whose log-probs the rollout already holds, so no reference model loads;
- groups (``grouper``): a unit is the G responses to one prompt, weighted by their rewards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from training.post import losses


def preference_pairs(
    rewards: torch.Tensor, group_size: int, correct_threshold: float = 0.5
) -> torch.Tensor:
    """(pairs, 2) rows [chosen, rejected]: in each group, the correct responses (reward at or
    above the threshold) best first, against the incorrect ones worst first, one to one.
    Groups that are all correct or all wrong give no pair."""
    grouped = losses.grouped_rewards(rewards, group_size)
    pairs = []
    for g, group in enumerate(grouped):
        order = torch.argsort(group, descending=True, stable=True)
        correct = [int(i) for i in order if group[i] >= correct_threshold]
        wrong = [int(i) for i in reversed(order) if group[i] < correct_threshold]
        pairs += [(g * group_size + c, g * group_size + w) for c, w in zip(correct, wrong)]
    return torch.tensor(pairs, dtype=torch.long).view(-1, 2)


@dataclass(frozen=True)
class Objective:
    """``units(rewards, G, settings) -> (rows (U, w), weights (U, w))`` and
    ``loss(logps, old_logps, mask, weights, settings)`` over (U, w, T) tensors; ``settings``
    is the train stage's ``TrainSettings`` (beta, nll_weight, correct_threshold)."""

    units: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[..., torch.Tensor]


def _rl(advantage_fn: Callable, loss_fn: Callable) -> Objective:
    """``advantage_fn(rewards, G, settings)``; one unit per response. A loss with a clipped
    ratio takes ``settings.clip_range`` when it is set."""

    def units(rewards, group_size, settings):
        rows = torch.arange(len(rewards)).unsqueeze(1)
        return rows, advantage_fn(rewards, group_size, settings).unsqueeze(1)

    def loss(logps, old, mask, weights, settings):
        clip = settings.clip_range
        bounds = {"epsilon_low": clip[0], "epsilon_high": clip[1]} if clip else {}
        return loss_fn(logps[:, 0], old[:, 0], weights[:, 0], mask[:, 0], **bounds)

    return Objective(units, loss)


def _group_advantages(rewards, group_size, settings):
    return losses.group_advantages(rewards, group_size)


def _agapo_advantages(rewards, group_size, settings):
    return losses.agapo_advantages(rewards, group_size, settings.correct_threshold)


def _pairs(rewards, group_size, settings):
    rows = preference_pairs(rewards, group_size, settings.correct_threshold)
    return rows, torch.zeros(rows.shape)


def _dpo(logps, old, mask, weights, settings):
    chosen, rejected = (logps[:, 0], mask[:, 0]), (logps[:, 1], mask[:, 1])
    return losses.dpo_loss(
        chosen[0],
        rejected[0],
        old[:, 0],
        old[:, 1],
        chosen[1],
        rejected[1],
        beta=settings.beta,
        nll_weight=settings.nll_weight,
    )


def _simper(logps, old, mask, weights, settings):
    return losses.simper_loss(logps[:, 0], logps[:, 1], mask[:, 0], mask[:, 1])


def _groups(rewards, group_size, settings):
    rows = torch.arange(len(rewards)).view(-1, group_size)
    return rows, rewards.view(-1, group_size)


def _grouper(logps, old, mask, weights, settings):
    group_size = logps.shape[1]
    return losses.grouper_loss(
        logps.flatten(0, 1), mask.flatten(0, 1), weights.flatten(), group_size
    )


CLIPPED_LOSSES = frozenset({"grpo", "gspo"})
OBJECTIVES: dict[str, Objective] = {
    "grpo": _rl(_group_advantages, losses.grpo_loss),
    "gspo": _rl(_group_advantages, losses.gspo_loss),
    "agapo": _rl(_agapo_advantages, losses.agapo_loss),
    "dpo": Objective(_pairs, _dpo),
    "simper": Objective(_pairs, _simper),
    "grouper": Objective(_groups, _grouper),
}
