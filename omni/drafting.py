"""Chained MTP drafts: the one MTP layer applied recursively to draft up to k tokens.

DeepSeek-V3 trains one MTP module per depth; K-EXAONE and HyperCLOVA X Omni ship one. Applied
to itself, that one module still drafts deeper: at depth 1 it reads the main model's hidden
state at t and the embedding of token t+1 and predicts t+2; at depth d it reads its own output
state from depth d-1 in place of the main model's and the embedding of its own draft. Only the
depth-1 entries belong in the MTP cache for good (they are the ones built from the main model's
states), so the deeper entries are cropped after every verification.

The MTP cache is shared by the rows of a batch; a row's entries that are not (or no longer)
real are masked out rather than cut, since a cache can only be cropped for all rows at once.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache


def with_column(mask: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """``mask`` with ``column`` (``[B]`` or ``[B, T]``) appended on the right."""
    return torch.cat([mask, column.reshape(mask.shape[0], -1).to(mask.dtype)], dim=1)


def mask_or_none(mask: torch.Tensor) -> torch.Tensor | None:
    """No mask when every cached entry is real: attention is then plain causal, and cheaper."""
    return None if bool(mask.all()) else mask


class DraftState:
    """The MTP module's view of a batch: its cache and mask, plus the positions it has not yet
    read (main-model hidden states at t, ids at t + 1), read in one step at the next draft."""

    def __init__(self, model, hidden, next_ids, positions, valid: torch.Tensor) -> None:
        self.model = model
        self.cache = DynamicCache(config=model.mtp.block.config)  # its one full-attention layer
        self.mask = valid[:, :0]
        self.pending: list[tuple[torch.Tensor, ...]] = []
        self.newest = torch.zeros(valid.shape[0], dtype=torch.long, device=valid.device)
        self.add(hidden, next_ids, positions, valid)

    def add(self, hidden, next_ids, positions, valid: torch.Tensor) -> None:
        """Queue columns; ``valid`` is 1 where an entry is real. A row's real entries are a
        prefix of the columns, and its newest one is the one the next draft continues from."""
        offset = sum(chunk[0].shape[1] for chunk in self.pending)
        self.newest = offset + valid.sum(dim=1).clamp(min=1) - 1
        self.pending.append((hidden, next_ids, positions, valid))

    def _step(self, hidden, next_ids, positions, valid) -> torch.Tensor:
        self.mask = with_column(self.mask, valid)
        embeds = self.model.get_input_embeddings()(next_ids)
        states, self.cache = self.model.mtp(
            hidden,
            embeds,
            attention_mask=mask_or_none(self.mask),
            position_ids=positions,
            cache=self.cache,
            use_cache=True,
        )
        return states

    def chain(self, depth: int, newest: torch.Tensor, pick) -> list[list[int]]:
        """Draft ``depth`` tokens per row after each row's newest token (at position
        ``newest[row]``); ``pick(row, logits, drafted)`` chooses one row's draft from its
        logits, given the drafts before it (None: the row drafts no further)."""
        hidden, next_ids, positions, valid = (torch.cat(c, dim=1) for c in zip(*self.pending))
        self.pending.clear()
        states = self._step(hidden, next_ids, positions, valid)
        rows = torch.arange(states.shape[0], device=states.device)
        state = states[rows, self.newest].unsqueeze(1)
        drafts: list[list[int]] = [[] for _ in range(states.shape[0])]
        head = self.model.get_output_embeddings()
        for step in range(depth):
            logits = head(state)[:, 0]
            column = []
            for row, drafted in enumerate(drafts):
                token = pick(row, logits[row], drafted)
                drafted.append(token)
                column.append(token)
            if step == depth - 1:
                break
            ids = torch.tensor(column, dtype=torch.long, device=states.device).unsqueeze(1)
            ones = torch.ones_like(ids)
            state = self._step(state, ids, (newest + step).unsqueeze(1), ones)
        return drafts

    def drop_chain(self, depth: int) -> None:
        """Forget the entries of drafts deeper than 1: they were built from the MTP's own
        states, and the verified tokens' entries are added from the main model's."""
        if depth > 1:
            self.cache.crop(-(depth - 1))
            self.mask = self.mask[:, : -(depth - 1)]
