"""AGAPO, SimPER and GrouPER against hand-computed values; the losses refuse bad shapes.

(GRPO, GSPO and DPO are checked against TRL in test_post_trl_reference.py.)
"""

import math

import pytest
import torch

from training.post import losses, objectives


def _logps(*rows):
    """Per-token log-probs from per-token probabilities, None marking padding."""
    width = max(len(row) for row in rows)
    logps = torch.zeros(len(rows), width)
    mask = torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        for t, prob in enumerate(row):
            logps[i, t] = math.log(prob)
            mask[i, t] = 1.0
    return logps, mask


def test_agapo_advantages_leave_one_out_then_global_normalisation():
    rewards = torch.tensor([1.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    # leave-one-out: 1 - (0 + .5)/2 = .75, 0 - .75 = -.75, .5 - .5 = 0; the all-right group 0
    leave_one_out = torch.tensor([0.75, -0.75, 0.0, 0.0, 0.0, 0.0])
    std = math.sqrt((2 * 0.75**2) / 5)
    expected = leave_one_out / (std + 1e-4)
    assert torch.allclose(losses.agapo_advantages(rewards, 3), expected)


def test_agapo_gives_all_wrong_groups_the_small_negative_advantage():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    advantages = losses.agapo_advantages(rewards, 2, failed_group_advantage=-0.1)
    scale = 1 / (math.sqrt(2 / 5) + 1e-4)
    assert torch.allclose(advantages, torch.tensor([scale, -scale, -0.1, -0.1, -0.1, -0.1]))
    assert torch.equal(losses.group_advantages(rewards, 2)[2:], torch.zeros(4))


def test_all_wrong_groups_move_the_policy_under_agapo_but_not_grpo():
    generator = torch.Generator().manual_seed(0)
    rollout_logps = -torch.rand(4, 3, generator=generator) - 0.1
    mask = torch.ones(4, 3)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])  # prompt 2: both answers wrong

    def gradient(loss_fn, advantages):
        logps = rollout_logps.clone().requires_grad_(True)
        loss_fn(logps, rollout_logps, advantages, mask).backward()
        return logps.grad

    grpo = gradient(losses.grpo_loss, losses.group_advantages(rewards, 2))
    agapo = gradient(losses.agapo_loss, losses.agapo_advantages(rewards, 2))
    assert torch.equal(grpo[2:], torch.zeros(2, 3))
    assert grpo[:2].abs().sum() > 0
    # descending the loss lowers every token of the failing answers: gradient = +0.1 / |o| each
    assert torch.allclose(agapo[2:], torch.full((2, 3), 0.1 / 3 / 4))


def test_agapo_loss_is_unclipped_importance_weighted_policy_gradient():
    old, mask = _logps([0.5, 0.5], [0.25])
    new = old + torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # ratios e and e^2, far outside any clip
    advantages = torch.tensor([1.0, -2.0])
    expected = -((math.e + 1) / 2 * 1.0 + math.e**2 * -2.0) / 2
    assert losses.agapo_loss(new, old, advantages, mask).item() == pytest.approx(expected)


def test_simper_is_the_inverse_perplexity_contrast():
    chosen, chosen_mask = _logps([0.5, 0.5], [0.9, 0.1])
    rejected, rejected_mask = _logps([0.25], [0.2, 0.2, 0.2])
    # winners' 1/ppl: .5 and sqrt(.09) = .3; losers': .25 and .2
    expected = ((0.25 - 0.5) + (0.2 - 0.3)) / 2
    loss = losses.simper_loss(chosen, rejected, chosen_mask, rejected_mask)
    assert loss.item() == pytest.approx(expected)


def test_grouper_weights_contrast_better_and_worse_than_average():
    weights = losses.grouper_weights(torch.tensor([1.0, 0.5, 0.0, 0.0, 0.3, 0.3, 0.3, 0.3]), 4)
    # mean .375; deviations .625 .125 -.375 -.375 sum |.| = 1.5; the constant group gets 0
    expected = torch.tensor([0.625, 0.125, -0.375, -0.375, 0, 0, 0, 0]) / 0.75
    assert torch.allclose(weights, expected)


def test_grouper_loss_by_hand():
    logps, mask = _logps([0.8], [0.4, 0.4], [0.2], [0.6], [0.5], [0.5], [0.5], [0.5])
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    # group 1 weights +-.5: -(.5*.8 - .5*.4 - .5*.2 + .5*.6) = -.4; the all-wrong group 0
    assert losses.grouper_loss(logps, mask, rewards, 4).item() == pytest.approx(-0.2)


def test_grouper_with_two_responses_is_simper():
    logps, mask = _logps([0.7, 0.6], [0.3], [0.2, 0.9], [0.5, 0.5, 0.5])
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    simper = losses.simper_loss(logps[[0, 3]], logps[[1, 2]], mask[[0, 3]], mask[[1, 2]])
    grouper = losses.grouper_loss(logps, mask, rewards, 2)
    assert grouper.item() == pytest.approx(simper.item())


def test_losses_refuse_misaligned_inputs():
    logps, mask = _logps([0.5, 0.5], [0.5])
    with pytest.raises(ValueError, match="must line up"):
        losses.grpo_loss(logps, logps[:, :1], torch.zeros(2), mask)
    with pytest.raises(ValueError, match="groups of 3"):
        losses.group_advantages(torch.zeros(4), 3)
    with pytest.raises(ValueError, match="at least 2"):
        losses.agapo_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="one rejected response per chosen"):
        losses.simper_loss(logps, logps[:1], mask, mask[:1])
    with pytest.raises(ValueError, match="needs ref_logps"):
        losses.grpo_loss(logps, logps, torch.zeros(2), mask, beta=0.1)


def test_iterative_dpo_pairs_correct_against_incorrect_within_each_prompt():
    rewards = torch.tensor([0.0, 1.0, 0.2, 0.9, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    pairs = objectives.preference_pairs(rewards, 4)
    # prompt 0: correct 1 (1.0), 3 (.9); wrong 0 (0.0), 2 (.2): best with worst first
    assert pairs.tolist() == [[1, 0], [3, 2]]  # prompts 1 and 2 give no pair
    assert objectives.preference_pairs(torch.zeros(4), 2).shape == (0, 2)
