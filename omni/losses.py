"""The LM's training losses: next-token CE, and the MTP module's CE at depth 1 or over a
chain of drafts (``omni.mtp_chain``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from omni.mtp_chain import chain_loss, chain_states, check_mtp_training
from omni.processor import IGNORE_INDEX


def shifted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    shift: int,
    position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean CE of ``logits[:, t]`` against ``labels[:, t + shift]`` over valid targets.

    With ``position_ids`` (packed rows), a target counts only when it lies ``shift`` positions
    after the predicting token within the same sample.
    """
    n = min(logits.shape[1], labels.shape[1] - shift)
    targets = labels[:, shift : shift + n].clone()
    if position_ids is not None:
        same_sample = position_ids[:, shift : shift + n] - position_ids[:, :n] == shift
        targets[~same_sample] = IGNORE_INDEX
    flat_logits = logits[:, :n].reshape(-1, logits.shape[-1]).float()
    if not bool((targets != IGNORE_INDEX).any()):
        return flat_logits.sum() * 0.0
    return F.cross_entropy(flat_logits, targets.reshape(-1), ignore_index=IGNORE_INDEX)


def mtp_loss(
    mtp: nn.Module,
    head: nn.Module,
    hidden: torch.Tensor,
    main_logits: torch.Tensor,
    inputs_embeds: torch.Tensor,
    labels: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    depth: int = 1,
    targets: str = "labels",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The MTP module's depth-1 logits and its loss, from the main model's last states
    ``hidden`` and its logits (the targets of ``targets="model"``). Depth 1 on the labels is the module as
    DeepSeek-V3 trains it (``mtp_logits[:, t]`` sits at t and predicts the token at t + 2);
    anything else is the chained loss of ``omni.mtp_chain``."""
    if (depth, targets) == (1, "labels"):
        hidden, _ = mtp(
            hidden[:, :-1],
            inputs_embeds[:, 1:],
            attention_mask=None if attention_mask is None else attention_mask[:, :-1],
            position_ids=None if position_ids is None else position_ids[:, :-1],
        )
        logits = head(hidden)
        return logits, shifted_cross_entropy(logits, labels, 2, position_ids)
    check_mtp_training(depth, targets)
    states = chain_states(mtp, hidden, inputs_embeds, depth, position_ids, attention_mask)
    logits = [head(state) for state in states]
    return logits[0], chain_loss(logits, labels, main_logits, targets, position_ids)
