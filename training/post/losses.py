"""RL and preference losses as small pure functions over per-token log-probabilities.

Every function takes per-token log-probabilities of the response tokens, shape (B, T), with a
response mask of the same shape (1 on the tokens the policy produced, 0 on padding). The
response may be text, image codes or speech units: the losses never look at token ids, so one
implementation serves every output modality of the one interleaved sequence.

Group layout follows TRL's GRPOTrainer: the G responses to one prompt are consecutive rows,
so B = n_prompts * G and ``rewards.view(-1, G)`` gives one row per prompt.

Hand-written because the libraries that implement these objectives (TRL, verl, OpenRLHF) keep
them inside trainer methods bound to text-only generation; tests check GRPO, GSPO and DPO
against TRL's own code on the same tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# TRL 1.16.0 adds this to the group standard deviation before dividing (GRPOTrainer).
ADVANTAGE_EPS = 1e-4


def _check_tokens(mask: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    if mask.dim() != 2:
        raise ValueError(f"mask must be (batch, tokens), got shape {tuple(mask.shape)}")
    for name, tensor in tensors.items():
        if tensor is not None and tensor.shape != mask.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} but mask has {tuple(mask.shape)}; "
                "per-token log-probabilities and the response mask must line up"
            )


def grouped_rewards(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) rewards -> (B / G, G), one row per prompt; refuses a batch that does not split."""
    if rewards.dim() != 1:
        raise ValueError(
            f"rewards must be one value per response, got shape {tuple(rewards.shape)}"
        )
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(
            f"{rewards.numel()} rewards cannot be split into groups of {group_size}; "
            "a group needs at least 2 responses to the same prompt, stored consecutively"
        )
    return rewards.view(-1, group_size)


def sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over each response's own tokens: (B, T) -> (B,)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def group_advantages(
    rewards: torch.Tensor, group_size: int, eps: float = ADVANTAGE_EPS
) -> torch.Tensor:
    """GRPO's group-normalised advantage (DeepSeekMath, arXiv:2402.03300).

    A_i = (r_i - mean_j r_j) / (std_j r_j + eps) within each group of G responses to one
    prompt, std with Bessel's correction as in TRL. A group whose responses all score the same
    (all right or all wrong) has zero variance, so every A_i = 0: it gives no learning signal.
    """
    grouped = grouped_rewards(rewards, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    return (centred / (grouped.std(dim=1, keepdim=True) + eps)).reshape(-1)


def agapo_advantages(
    rewards: torch.Tensor,
    group_size: int,
    correct_threshold: float = 0.5,
    failed_group_advantage: float = -0.1,
    eps: float = ADVANTAGE_EPS,
) -> torch.Tensor:
    """AGAPO's advantages (EXAONE 4.0 report, arXiv:2507.11407; reused by K-EXAONE).

    Group-level: the leave-one-out advantage A_i = r_i - (1 / (G - 1)) * sum_{j != i} r_j.
    Global: A_i <- (A_i - mean_batch A) / (std_batch A + eps), over the whole batch.
    Asymmetric sampling: a group with no correct response (every r_i < ``correct_threshold``)
    is kept, not dropped, and each of its responses gets ``failed_group_advantage`` (a small
    negative value), so the policy is pushed off paths that fail every time. Under GRPO such a
    zero-variance group has advantage 0 and contributes nothing. The report gives no number for
    the penalty; -0.1 is our default, about a tenth of a typical normalised advantage.
    """
    grouped = grouped_rewards(rewards, group_size)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    leave_one_out = (grouped - others_mean).reshape(-1)
    global_norm = (leave_one_out - leave_one_out.mean()) / (leave_one_out.std() + eps)
    all_wrong = (grouped < correct_threshold).all(dim=1).repeat_interleave(group_size)
    return torch.where(all_wrong, torch.full_like(global_norm, failed_group_advantage), global_norm)


def _clipped_surrogate(
    log_ratio: torch.Tensor, advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """PPO's pessimistic objective, negated: -min(w A, clip(w, 1 - eps_low, 1 + eps_high) A)."""
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    return -torch.min(ratio * advantages, clipped * advantages)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.0,
) -> torch.Tensor:
    """GRPO with a token-level clipped ratio (DeepSeekMath, arXiv:2402.03300).

    w_{i,t} = pi_theta(o_{i,t}) / pi_old(o_{i,t}) per token,
    l_{i,t} = -min(w A_i, clip(w, 1 - eps_low, 1 + eps_high) A_i) + beta * KL_{i,t},
    KL_{i,t} = exp(ref - logp) - (ref - logp) - 1 (the k3 estimator),
    loss = mean_i [ (1 / |o_i|) sum_t l_{i,t} ], as TRL's loss_type="grpo".
    ``old_logps`` are those of the policy that generated the snapshot (off-policy training).
    """
    _check_tokens(mask, logps=logps, old_logps=old_logps, ref_logps=ref_logps)
    if beta and ref_logps is None:
        raise ValueError("beta > 0 needs ref_logps, the reference policy's per-token log-probs")
    per_token = _clipped_surrogate(
        logps - old_logps, advantages.unsqueeze(1), epsilon_low, epsilon_high
    )
    if beta:
        ref_gap = ref_logps - logps
        per_token = per_token + beta * (torch.exp(ref_gap) - ref_gap - 1)
    return sequence_mean(per_token, mask).mean()


def gspo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon_low: float = 3e-4,
    epsilon_high: float = 4e-4,
) -> torch.Tensor:
    """GSPO: sequence-level ratio and clipping (Zheng et al. 2025, arXiv:2507.18071).

    s_i = exp((1 / |o_i|) sum_t log(pi_theta(o_{i,t}) / pi_old(o_{i,t}))), the length-normalised
    sequence ratio; loss = mean_i -min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i).
    Solar Open's RL phase A uses this objective. The default clipping range (3e-4, 4e-4) is
    the one the GSPO paper reports. TRL computes the same with
    importance_sampling_level="sequence" and loss_type="grpo".
    """
    _check_tokens(mask, logps=logps, old_logps=old_logps)
    log_seq_ratio = sequence_mean(logps - old_logps, mask)
    return _clipped_surrogate(log_seq_ratio, advantages, epsilon_low, epsilon_high).mean()


def agapo_loss(
    logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """AGAPO's policy term (EXAONE 4.0 report): the policy gradient without PPO's clipping.

    loss = -mean_i (1 / |o_i|) sum_t w_{i,t} A_i with w_{i,t} = pi_theta / pi_old, unclipped, so
    the gradient is w A grad log pi for every token, low-probability exploratory tokens included
    (clipping would zero them). On-policy (pi_old = pi_theta) this is -A grad log pi, the
    report's REINFORCE form. Use with ``agapo_advantages``; the KL term is left out (beta = 0).
    """
    _check_tokens(mask, logps=logps, old_logps=old_logps)
    ratio = torch.exp(logps - old_logps)
    return -sequence_mean(ratio * advantages.unsqueeze(1), mask).mean()


def dpo_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_mask: torch.Tensor,
    rejected_mask: torch.Tensor,
    beta: float = 0.1,
    nll_weight: float = 0.0,
) -> torch.Tensor:
    """DPO's sigmoid loss (Rafailov et al. 2023, arXiv:2305.18290), plus NLL on the winner.

    h = beta * [(log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))], sequence log-probs
    summed over each response's tokens; loss = mean(-log sigmoid(h)) + nll_weight * NLL, with
    NLL = -mean of log pi over all winner tokens in the batch (TRL's "sft" loss term). The NLL
    term is what iterative DPO adds (Pang et al. 2024, arXiv:2404.19733), as Solar Open's
    preference phase B does, so the winner's likelihood does not fall with the loser's.
    """
    _check_tokens(chosen_mask, chosen_logps=chosen_logps, ref_chosen_logps=ref_chosen_logps)
    _check_tokens(
        rejected_mask, rejected_logps=rejected_logps, ref_rejected_logps=ref_rejected_logps
    )
    if chosen_mask.shape[0] != rejected_mask.shape[0]:
        raise ValueError(
            f"{chosen_mask.shape[0]} chosen and {rejected_mask.shape[0]} rejected responses; "
            "DPO needs one rejected response per chosen one"
        )
    chosen_w, rejected_w = (
        chosen_mask.to(chosen_logps.dtype),
        rejected_mask.to(rejected_logps.dtype),
    )
    chosen_ratio = ((chosen_logps - ref_chosen_logps) * chosen_w).sum(-1)
    rejected_ratio = ((rejected_logps - ref_rejected_logps) * rejected_w).sum(-1)
    loss = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
    if nll_weight:
        loss = loss - nll_weight * (chosen_logps * chosen_w).sum() / chosen_w.sum().clamp(min=1.0)
    return loss


def inverse_perplexity(logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """exp of the mean token log-prob of each response, in (0, 1]: 1 / perplexity. (B,)"""
    return torch.exp(sequence_mean(logps, mask))


def simper_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    chosen_mask: torch.Tensor,
    rejected_mask: torch.Tensor,
) -> torch.Tensor:
    """SimPER (Xiao et al. 2025, arXiv:2502.00883): no reference, no hyperparameters.

    loss = mean over pairs of [ -exp((1/|y_w|) sum_t log pi(y_w,t)) + exp((1/|y_l|) sum_t log pi(y_l,t)) ],
    i.e. raise the winner's inverse perplexity and lower the loser's.
    """
    _check_tokens(chosen_mask, chosen_logps=chosen_logps)
    _check_tokens(rejected_mask, rejected_logps=rejected_logps)
    if chosen_mask.shape[0] != rejected_mask.shape[0]:
        raise ValueError(
            f"{chosen_mask.shape[0]} chosen and {rejected_mask.shape[0]} rejected responses; "
            "SimPER needs one rejected response per chosen one"
        )
    winner = inverse_perplexity(chosen_logps, chosen_mask)
    loser = inverse_perplexity(rejected_logps, rejected_mask)
    return (loser - winner).mean()


def grouper_weights(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """GrouPER's contrast weights: w_i = 2 (r_i - mean_j r_j) / sum_j |r_j - mean_j r_j|.

    Within a group the weights sum to 0, the positive ones to +1 and the negative ones to -1.
    They are scale-free in the reward (no temperature, no std epsilon), and a group whose
    responses all score the same gets w = 0.
    """
    grouped = grouped_rewards(rewards, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    spread = centred.abs().sum(dim=1, keepdim=True)
    weights = torch.where(
        spread > 0, 2 * centred / spread.clamp(min=1e-12), torch.zeros_like(centred)
    )
    return weights.reshape(-1)


def grouper_loss(
    logps: torch.Tensor, mask: torch.Tensor, rewards: torch.Tensor, group_size: int
) -> torch.Tensor:
    """GrouPER: SimPER over a group of G responses at once (K-EXAONE's group preference step).

    loss = mean over groups of -sum_i w_i * exp((1/|y_i|) sum_t log pi(y_i,t)), with the weights
    of ``grouper_weights``. Why this form: it is a contrast of inverse perplexities as SimPER's,
    with the reward-weighted mean of the better-than-average responses raised and that of the
    worse-than-average lowered, so one noisy judgement moves a weight instead of flipping a
    pair. For G = 2 with one winner it is exactly SimPER; like SimPER it needs no reference
    model and no hyperparameter. The report states the idea, not an equation; this is ours.
    """
    _check_tokens(mask, logps=logps)
    if rewards.numel() != mask.shape[0]:
        raise ValueError(f"{rewards.numel()} rewards for {mask.shape[0]} responses")
    weights = grouper_weights(rewards, group_size)
    contrast = -(weights * inverse_perplexity(logps, mask)).view(-1, group_size).sum(dim=1)
    return contrast.mean()
