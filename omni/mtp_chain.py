"""Chained MTP training: the one MTP layer trained at every depth it drafts at.

``omni.drafting`` applies the one MTP layer to its own output to draft a chain of k tokens. A
module trained only at depth 1 (where it reads the main model's states) reads its own states
from depth 2 on, and its deeper drafts are rarely accepted. This loss trains depths 1..D, each
entry attending to what the MTP cache holds when it drafts: the depth-j entry of the chain
rooted at position t sits at position t + j - 1 and sees the depth-1 entries at positions up to
t (the ones built from the main model's states) and its own chain's entries of depths 2..j.
Depth j runs as one forward over the cache of depths 1..j-1, with that pattern as a custom
attention mask, so every depth costs one pass over the sequence.

Written by hand: transformers and the DeepSeek-V3 / K-EXAONE releases train one module per
depth, none trains one module at several. With ``targets="model"`` each depth learns the main
model's own greedy choice at its place (self-distillation, as Medusa-2 and EAGLE train their
draft heads on the target model's outputs): greedy verification accepts a draft exactly when it
is that choice, so this is what acceptance measures. The main model's outputs do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from omni.decoding import MAX_DRAFT_TOKENS
from omni.processor import IGNORE_INDEX

MTP_TARGETS = ("labels", "model")


def check_mtp_training(depth: int, targets: str) -> None:
    """A clear error for a chain depth (at most the longest chain decoding drafts) or a
    target kind that cannot be trained."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DRAFT_TOKENS:
        raise ValueError(f"mtp_depth must be an integer in 1..{MAX_DRAFT_TOKENS}, got {depth!r}")
    if targets not in MTP_TARGETS:
        raise ValueError(f"mtp_targets must be one of {MTP_TARGETS}, got {targets!r}")


def _sample_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` index of the packed sample each column belongs to (positions restart)."""
    steps = position_ids[:, 1:] - position_ids[:, :-1]
    starts = torch.cat([torch.ones_like(position_ids[:, :1]), (steps != 1).long()], dim=1)
    return starts.cumsum(dim=1)


def _root_mask(position_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``[B, n, n]``: root t may see depth-1 entry s (s <= t, same sample, a real column)."""
    n = position_ids.shape[1]
    sample = _sample_ids(position_ids)
    causal = torch.ones(n, n, dtype=torch.bool, device=position_ids.device).tril()
    allowed = causal & (sample.unsqueeze(2) == sample.unsqueeze(1))
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool().unsqueeze(1)
    return allowed


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A ``[B, 1, Q, K]`` additive mask, which sdpa and eager attention both take as it is, in
    the dtype attention runs in (autocast's, where it is on)."""
    device = allowed.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min).unsqueeze(1)


def chain_states(
    mtp,
    hidden: torch.Tensor,
    embeds: torch.Tensor,
    depth: int,
    position_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The MTP output states at depths 1..``depth``, each ``[B, T - 1, H]``: entry t of depth j
    is the chain rooted at t, drafting the token at t + j + 1 (``hidden``: the main model's
    last states ``[B, T, H]``; ``embeds``: the input embeddings ``[B, T, H]``)."""
    batch, length, _ = hidden.shape
    n = length - 1
    if position_ids is None:
        position_ids = torch.arange(length, device=hidden.device).expand(batch, -1)
    roots = position_ids[:, :n]
    seen = _root_mask(roots, None if attention_mask is None else attention_mask[:, :n])
    chain = torch.eye(n, dtype=torch.bool, device=hidden.device).expand(batch, n, n)
    cache = DynamicCache(config=mtp.block.config)
    states: list[torch.Tensor] = []
    state = hidden[:, :n]
    for j in range(1, depth + 1):
        # The token the depth-j entry reads is the one at t + j (the last columns repeat the
        # final token; their targets lie past the row and are ignored).
        index = torch.arange(j, j + n, device=hidden.device).clamp(max=length - 1)
        allowed = torch.cat([seen, *[chain] * (j - 1)], dim=-1)
        state, cache = mtp(
            state,
            embeds[:, index],
            attention_mask=_additive(allowed, hidden.dtype),
            position_ids=roots + (j - 1),
            cache=cache,
            use_cache=True,
        )
        states.append(state)
    return states


def chain_loss(
    logits_by_depth: list[torch.Tensor],
    labels: torch.Tensor,
    main_logits: torch.Tensor,
    targets: str,
    position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over the depths that have targets of each one's mean CE. Depth j at t predicts the
    token at t + j + 1: its label (``targets="labels"``) or the main model's greedy choice
    there, read from ``main_logits[:, t + j]`` (``"model"``); only where that label is trained
    (not ignored) and lies in the same packed sample."""
    losses = []
    length = labels.shape[1]
    chosen = main_logits.detach().argmax(-1) if targets == "model" else None
    for j, logits in enumerate(logits_by_depth, start=1):
        n = min(logits.shape[1], length - j - 1)
        wanted = labels[:, j + 1 : j + 1 + n]
        goal = wanted.clone() if chosen is None else chosen[:, j : j + n].clone()
        goal[wanted == IGNORE_INDEX] = IGNORE_INDEX
        if position_ids is not None:
            same = position_ids[:, j + 1 : j + 1 + n] - position_ids[:, :n] == j + 1
            goal[~same] = IGNORE_INDEX
        if n > 0 and bool((goal != IGNORE_INDEX).any()):
            flat = logits[:, :n].reshape(-1, logits.shape[-1]).float()
            losses.append(F.cross_entropy(flat, goal.reshape(-1), ignore_index=IGNORE_INDEX))
    if not losses:
        return logits_by_depth[0].sum() * 0.0
    return torch.stack(losses).mean()
