"""GRPO, GSPO and DPO give TRL's values on the same tensors.

TRL (1.16.0, a test dependency) computes these losses inside its trainers' ``_compute_loss``
methods, so the tests run those very methods on a stand-in trainer object that carries only
the settings they read, with the model's log-probabilities crafted instead of computed.
"""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd

from training.post import losses


class _SingleProcess:
    """The accelerator calls TRL's loss code makes, for one process."""

    device = torch.device("cpu")
    sync_gradients = True

    def gather(self, tensor):
        return tensor

    gather_for_metrics = gather

    def reduce(self, tensor, reduction="sum"):
        return tensor


def _rollout(seed: int = 0, batch: int = 6, tokens: int = 5):
    generator = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, tokens, generator=generator) * 3
    new = old + 0.4 * torch.randn(batch, tokens, generator=generator)
    ref = old + 0.2 * torch.randn(batch, tokens, generator=generator)
    mask = torch.ones(batch, tokens)
    mask[1, 3:] = 0
    mask[4, 2:] = 0
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 1.0])
    return new, old, ref, mask, rewards


def _trl_grpo_loss(new, old, ref, mask, advantages, level, eps_low, eps_high, beta):
    logps = new.clone().requires_grad_(True)
    trainer = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logps, torch.zeros_like(logps), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=level,
        beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None),
        loss_type="grpo",
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        use_vllm=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        accelerator=_SingleProcess(),
        _metrics={"train": defaultdict(list)},
    )
    inputs = {
        "prompt_ids": torch.zeros(new.shape[0], 2, dtype=torch.long),
        "prompt_mask": torch.ones(new.shape[0], 2),
        "completion_ids": torch.zeros(new.shape, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
    }
    loss = GRPOTrainer._compute_loss(trainer, None, inputs)
    loss.backward()
    return loss.detach(), logps.grad


def test_group_advantages_match_trl_normalisation():
    _, _, _, _, rewards = _rollout()
    grouped = rewards.view(-1, 3)
    # TRL 1.16.0 GRPOTrainer._generate_and_score_completions, scale_rewards="group"
    trl = (grouped - grouped.mean(1, keepdim=True)) / (nanstd(grouped, dim=1, keepdim=True) + 1e-4)
    assert torch.allclose(losses.group_advantages(rewards, 3), trl.reshape(-1))


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_and_gradient_match_trl_token_level(beta):
    new, old, ref, mask, rewards = _rollout()
    advantages = losses.group_advantages(rewards, 3)
    trl_loss, trl_grad = _trl_grpo_loss(new, old, ref, mask, advantages, "token", 0.2, 0.28, beta)
    logps = new.clone().requires_grad_(True)
    ours = losses.grpo_loss(logps, old, advantages, mask, 0.2, 0.28, ref_logps=ref, beta=beta)
    ours.backward()
    assert torch.allclose(ours.detach(), trl_loss, atol=1e-6)
    assert torch.allclose(logps.grad, trl_grad, atol=1e-6)
    assert trl_grad.abs().sum() > 0


def test_gspo_loss_and_gradient_match_trl_sequence_level():
    new, old, ref, mask, rewards = _rollout(seed=1)
    new = old + 0.002 * (new - old)  # inside and outside the narrow GSPO clip range
    advantages = losses.group_advantages(rewards, 3)
    trl_loss, trl_grad = _trl_grpo_loss(new, old, ref, mask, advantages, "sequence", 3e-4, 4e-4, 0)
    logps = new.clone().requires_grad_(True)
    ours = losses.gspo_loss(logps, old, advantages, mask)
    ours.backward()
    assert torch.allclose(ours.detach(), trl_loss, atol=1e-6)
    assert torch.allclose(logps.grad, trl_grad, atol=1e-6)
    clipped = logps.grad.abs().sum(-1) == 0
    assert clipped.any() and not clipped.all()


def _trl_dpo_loss(
    chosen, rejected, ref_chosen, ref_rejected, chosen_mask, rejected_mask, beta, nll
):
    """Drive TRL's DPOTrainer._compute_loss; the model returns the crafted log-probs."""
    per_token = torch.cat([chosen, rejected]).clone().requires_grad_(True)
    batch, tokens = per_token.shape
    completion_mask = torch.cat([torch.zeros(batch, 1), torch.cat([chosen_mask, rejected_mask])], 1)

    def model(**kwargs):  # the fused LM head gives 0 where labels are -100
        return SimpleNamespace(
            log_probs=per_token * completion_mask[:, 1:],
            entropy=torch.zeros(batch, tokens),
            mean_logits=torch.zeros(batch, tokens),
            is_top1=torch.zeros(batch, tokens, dtype=torch.bool),
        )

    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_SingleProcess(),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=["sigmoid", "sft"] if nll else ["sigmoid"],
        loss_weights=[1.0, nll] if nll else [1.0],
        beta=beta,
        use_weighting=False,
        _metrics={"train": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {
        "input_ids": torch.zeros(batch, tokens + 1, dtype=torch.long),
        "attention_mask": torch.ones(batch, tokens + 1),
        "completion_mask": completion_mask,
        "ref_chosen_logps": (ref_chosen * chosen_mask).sum(-1),
        "ref_rejected_logps": (ref_rejected * rejected_mask).sum(-1),
    }
    loss = DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    loss.backward()
    return loss.detach(), per_token.grad


@pytest.mark.parametrize("nll_weight", [0.0, 1.0])
def test_dpo_loss_and_gradient_match_trl(nll_weight):
    new, old, ref, mask, _ = _rollout(seed=2)
    chosen, rejected, ref_chosen, ref_rejected = new[:3], new[3:], ref[:3], ref[3:]
    chosen_mask, rejected_mask = mask[:3], mask[3:]
    trl_loss, trl_grad = _trl_dpo_loss(
        chosen, rejected, ref_chosen, ref_rejected, chosen_mask, rejected_mask, 0.1, nll_weight
    )
    chosen = chosen.clone().requires_grad_(True)
    rejected = rejected.clone().requires_grad_(True)
    ours = losses.dpo_loss(
        chosen, rejected, ref_chosen, ref_rejected, chosen_mask, rejected_mask, 0.1, nll_weight
    )
    ours.backward()
    assert torch.allclose(ours.detach(), trl_loss, atol=1e-6)
    assert torch.allclose(torch.cat([chosen.grad, rejected.grad]), trl_grad, atol=1e-6)
