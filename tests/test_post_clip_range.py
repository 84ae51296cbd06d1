"""The train stage's ``clip_range``: the clipping of GRPO's and GSPO's ratio, chosen per run.

GSPO's default range (3e-4, 4e-4, the paper's) suits a policy whose sequence log-ratio moves
that little per step; a small policy at a larger step size drifts past it after one step, and a
clipped response gives no gradient. These tests pin what the option changes, and that runs
without it keep their snapshot keys."""

import dataclasses

import pytest
import torch

from training.post import losses
from training.post.objectives import OBJECTIVES
from training.post.snapshots import content_hash
from training.post.train_stage import TrainSettings, train_key


def _drifted_batch():
    """Two responses whose length-normalised log-ratio is +0.01 (past GSPO's default high
    bound of 4e-4), both with a positive advantage, as (U, 1, T) objective tensors."""
    old = torch.log(torch.full((2, 1, 3), 0.25))
    logps = (old + 0.01).requires_grad_()
    mask = torch.ones(2, 1, 3, dtype=torch.long)
    advantages = torch.tensor([[1.0], [0.5]])
    return logps, old, mask, advantages


def _gradient(settings: TrainSettings) -> tuple[float, torch.Tensor]:
    logps, old, mask, advantages = _drifted_batch()
    loss = OBJECTIVES[settings.loss].loss(logps, old, mask, advantages, settings)
    loss.backward()
    return loss.item(), logps.grad


def test_a_drifted_response_is_clipped_by_default_and_trained_on_with_a_wider_range():
    default_loss, default_grad = _gradient(TrainSettings(loss="gspo"))
    assert default_grad.abs().sum() == 0  # clipped: s = e^0.01 > 1 + 4e-4 with A > 0
    assert default_loss == pytest.approx(-(1 + 4e-4) * 0.75)
    wide = TrainSettings(loss="gspo", clip_range=(0.03, 0.04))
    wide_loss, wide_grad = _gradient(wide)
    logps, old, mask, advantages = _drifted_batch()
    expected = losses.gspo_loss(
        logps[:, 0], old[:, 0], advantages[:, 0], mask[:, 0], epsilon_low=0.03, epsilon_high=0.04
    )
    assert wide_loss == pytest.approx(expected.item())
    assert wide_loss == pytest.approx(-torch.exp(torch.tensor(0.01)).item() * 0.75)
    assert (wide_grad < 0).all()  # descending the loss raises every response's log-prob


def test_grpo_takes_the_range_token_by_token():
    narrow = TrainSettings(loss="grpo", clip_range=(0.001, 0.001))
    loss, grad = _gradient(narrow)
    assert grad.abs().sum() == 0 and loss == pytest.approx(-1.001 * 0.75)
    assert _gradient(TrainSettings(loss="grpo"))[1].abs().sum() > 0  # 0.2 holds e^0.01


def test_a_run_without_the_option_keeps_its_earlier_key():
    settings = TrainSettings(loss="gspo", learning_rate=4e-5, micro_batch=16)
    earlier = {k: v for k, v in dataclasses.asdict(settings).items() if k != "clip_range"}
    inputs = {"policy": "p", "rollout": "r", "reward": "w"}
    assert train_key("p", "r", "w", settings) == content_hash(
        {"stage": "train", **inputs, "settings": earlier}
    )
    clipped = dataclasses.replace(settings, clip_range=(0.03, 0.04))
    assert train_key("p", "r", "w", clipped) != train_key("p", "r", "w", settings)


@pytest.mark.parametrize(
    "loss, clip_range, message",
    [
        ("dpo", (0.1, 0.1), "'dpo' has no clipped ratio"),
        ("agapo", (0.1, 0.1), "'agapo' has no clipped ratio"),
        ("gspo", (0.0, 0.1), "0 < low < 1"),
        ("gspo", (1.5, 0.1), "0 < low < 1"),
        ("grpo", (0.2, -0.1), "high > 0"),
    ],
)
def test_a_clip_range_that_cannot_apply_is_refused(loss, clip_range, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(loss=loss, clip_range=clip_range)
