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


class CacheMask:
    """Which cached columns of each row are real. A single unpadded row's cache only ever holds
    real columns (rejected ones are cropped), so its mask is not kept at all: attention is then
    plain causal, which is cheaper."""

    def __init__(self, mask: torch.Tensor) -> None:
        tracked = mask.shape[0] > 1 or not bool(mask.all())
        self.mask = mask if tracked else None

    def extend(self, columns: torch.Tensor) -> None:
        """Append ``[B, T]`` columns (1 where real)."""
        if self.mask is not None:
            self.mask = torch.cat([self.mask, columns.to(self.mask.dtype)], dim=1)

    def crop(self, count: int) -> None:
        """Forget the newest ``count`` columns."""
        if self.mask is not None and count:
            self.mask = self.mask[:, :-count]

    def hide(self, valid: torch.Tensor) -> None:
        """Mask out the newest columns where ``valid`` (``[B, T]``) is 0."""
        if self.mask is not None:
            self.mask[:, -valid.shape[1] :] *= valid

    def value(self) -> torch.Tensor | None:
        """The mask to attend with; None when every column is real."""
        return None if self.mask is None or bool(self.mask.all()) else self.mask


class DraftState:
    """The MTP module's view of a batch: its cache and mask, plus the positions it has not yet
    read (main-model hidden states at t, ids at t + 1), read in one step at the next draft."""

    def __init__(self, model, hidden, next_ids, positions, valid: torch.Tensor) -> None:
        self.model = model
        self.cache = DynamicCache(config=model.mtp.block.config)  # its one full-attention layer
        self.mask = CacheMask(valid)
        self.mask.crop(valid.shape[1])  # nothing is cached yet
        self.pending: list[tuple[torch.Tensor, ...]] = []
        self.add(hidden, next_ids, positions, valid)

    def add(self, hidden, next_ids, positions, valid: torch.Tensor) -> None:
        """Queue columns; ``valid`` is 1 where an entry is real. A row's last real entry is
        its newest, the one the next draft continues from."""
        self.pending.append((hidden, next_ids, positions, valid))

    def _step(self, hidden, next_ids, positions, valid) -> torch.Tensor:
        self.mask.extend(valid)
        embeds = self.model.get_input_embeddings()(next_ids)
        states, self.cache = self.model.mtp(
            hidden,
            embeds,
            attention_mask=self.mask.value(),
            position_ids=positions,
            cache=self.cache,
            use_cache=True,
        )
        return states

    def chain(self, depth: int, newest: torch.Tensor, pick) -> list[list[int]]:
        """Draft ``depth`` tokens per row after each row's newest token (at position
        ``newest[row]``); ``pick(row, logits, drafted)`` chooses one row's draft from its
        logits, given the drafts before it (None: the row drafts no further)."""
        last = self.pending[-1][3]  # each row's newest entry is the last real one of the last chunk
        hidden, next_ids, positions, valid = (torch.cat(c, dim=1) for c in zip(*self.pending))
        self.pending.clear()
        # The index of the last real entry: a prompt's real entries end its chunk (left padding),
        # a verified step's begin it (the kept tokens), and a finished row has none (index 0).
        order = torch.arange(1, last.shape[1] + 1, device=last.device)
        latest = valid.shape[1] - last.shape[1] + (last * order).argmax(dim=1)
        states = self._step(hidden, next_ids, positions, valid)
        rows = torch.arange(states.shape[0], device=states.device)
        state = states[rows, latest].unsqueeze(1)
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
            self.mask.crop(depth - 1)
