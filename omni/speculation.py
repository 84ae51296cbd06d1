"""MTP self-speculative decoding of one request, drafting only while drafts pay.

DeepSeek-V3 / K-EXAONE style: after each verified token ``a`` the MTP module drafts the token
after it, ``d``; one forward of the main model over ``[a, d]`` both checks ``d`` and yields the
token after ``d``. A rejected draft is cut from the cache (``cache.crop(-1)``). Greedy output
equals plain greedy output; with sampling the draft is accepted with probability
``min(1, p(d) / q(d))`` and a rejection resamples from ``max(0, p - q)``, which keeps the
output distribution exactly the main model's.

A rejected draft costs a wider forward and an MTP step for no gain, so a model whose drafts
are rarely accepted decodes slower than plainly. ``SpeculationPolicy`` watches the acceptance
of the last few drafts and pauses drafting when it is too low to pay; while paused it probes
with one draft now and then (less often after each failed probe), and resumes once accepted
probes lift the recent acceptance again. While paused, the main model's hidden states are kept
and given to the MTP module in one step when the next draft is due, so pausing costs nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from omni.decoding import Column, Decoder
from omni.processor import OmniBatch


@dataclass
class SpeculationPolicy:
    """Draft while the last ``window`` drafts were accepted at least ``min_acceptance`` of the
    time; otherwise probe with one draft after ``probe_every`` plain steps, doubling that gap
    (up to ``max_probe_every``) after each rejected probe, and probing again after one step
    when a probe is accepted.

    With one extra token per accepted draft and about one plain step's cost per draft step, a
    draft pays once acceptance exceeds the relative cost of the wider forward and the MTP step;
    a quarter is a safe margin over that for the backbones here."""

    window: int = 6
    min_acceptance: float = 0.25
    probe_every: int = 16
    max_probe_every: int = 128
    recent: deque = field(init=False)
    since_draft: int = field(init=False, default=0)
    gap: int = field(init=False)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.window)
        self.gap = self.probe_every

    @property
    def drafting(self) -> bool:
        """True while recent acceptance pays (and until a window of drafts has been seen)."""
        if len(self.recent) < self.window:
            return True
        return sum(self.recent) / len(self.recent) >= self.min_acceptance

    def should_draft(self) -> bool:
        return self.drafting or self.since_draft >= self.gap

    def record(self, accepted: bool) -> None:
        """One draft's verdict."""
        probe = not self.drafting
        self.recent.append(accepted)
        self.since_draft = 0
        if probe and accepted:  # acceptance may be rising: check again on the next step
            self.gap = 1
        elif probe:
            self.gap = min(max(2 * self.gap, self.probe_every), self.max_probe_every)
        elif self.drafting:
            self.gap = self.probe_every

    def skip(self) -> None:
        """One step decoded without a draft."""
        self.since_draft += 1


class _DraftState:
    """The MTP module's view of the sequence: its cache, plus the positions it has not yet
    read (hidden states of the main model at t, ids at t + 1), read at the next draft."""

    def __init__(self, model) -> None:
        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, hidden: torch.Tensor, next_ids: torch.Tensor, positions: torch.Tensor) -> None:
        self.pending.append((hidden, next_ids, positions))

    def draft_logits(self) -> torch.Tensor:
        """Logits of the token after the newest one (one MTP step over what is pending)."""
        hidden, next_ids, positions = (torch.cat(parts, dim=1) for parts in zip(*self.pending))
        self.pending.clear()
        # One unpadded row: every step is plain causal attention, so no masks are passed.
        logits, self.cache = self.model.mtp_step(
            hidden, next_ids, position_ids=positions, cache=self.cache, use_cache=True
        )
        return logits[0, -1]


@torch.no_grad()
def speculative_columns(
    decoder: Decoder, batch: OmniBatch, policy: SpeculationPolicy | None = None
) -> Iterator[Column]:
    """Speculative decoding of a single request: yields the tokens each step adds."""
    if batch.input_ids.shape[0] != 1:
        raise ValueError("speculative decoding runs one request at a time")
    policy = policy or SpeculationPolicy()
    model, stats = decoder.model, decoder.stats
    batch, out, cache = decoder.prefill(batch, want_hidden=True)
    answer = decoder.answers[0]
    start = time.perf_counter()
    position = int(batch.position_ids[0, -1])
    token = decoder.choose(out.logits[0, -1], 0, answer)
    start = yield from decoder.hand_over([decoder.emit(0, [token])], start)
    drafts = _DraftState(model)
    prompt_next = torch.cat([batch.input_ids[:, 1:], decoder.ids([[token]])], dim=1)
    drafts.add(out.last_hidden_state, prompt_next, batch.position_ids)
    while not decoder.done(answer):
        if policy.should_draft():
            emitted, accepted, position, token = _draft_step(
                decoder, drafts, cache, position, token
            )
            policy.record(accepted)
        else:
            policy.skip()
            stats.paused_steps += 1
            emitted, position, token = _plain_step(decoder, drafts, cache, position, token)
        if not emitted:
            break
        start = yield from decoder.hand_over([emitted], start)
    decoder.finish(start)


def _plain_step(decoder: Decoder, drafts: _DraftState, cache, position: int, token: int):
    """One main-model step without a draft; its hidden state waits for the next draft."""
    answer = decoder.answers[0]
    out = decoder.model(
        input_ids=decoder.ids([[token]]),
        position_ids=decoder.ids([[position + 1]]),
        cache=cache,
        use_cache=True,
        return_hidden=True,
    )
    decoder.stats.forwards += 1
    after = decoder.choose(out.logits[0, -1], 0, answer)
    emitted = decoder.emit(0, [after])
    drafts.add(out.last_hidden_state, decoder.ids([[after]]), decoder.ids([[position + 1]]))
    return emitted, position + 1, after


def _draft_step(decoder: Decoder, drafts: _DraftState, cache, position: int, token: int):
    """Draft one token, verify it with one forward over ``[token, draft]``."""
    answer, stats = decoder.answers[0], decoder.stats
    draft, q = _draft(decoder, drafts.draft_logits(), answer)
    stats.drafts += 1
    out = decoder.model(
        input_ids=decoder.ids([[token, draft]]),
        position_ids=decoder.ids([[position + 1, position + 2]]),
        cache=cache,
        use_cache=True,
        return_hidden=True,
    )
    stats.forwards += 1
    accepted, fix = _verify(decoder, out.logits[0, 0], answer, draft, q)
    if accepted:
        stats.accepted += 1
        after = decoder.choose(out.logits[0, 1], 0, [*answer, draft])
        emitted = decoder.emit(0, [draft, after])
        positions = decoder.ids([[position + 1, position + 2]])
        drafts.add(out.last_hidden_state, decoder.ids([[draft, after]]), positions)
        return emitted, True, position + 2, after
    cache.crop(-1)
    emitted = decoder.emit(0, [fix])
    hidden = out.last_hidden_state[:, :1]
    drafts.add(hidden, decoder.ids([[fix]]), decoder.ids([[position + 1]]))
    return emitted, False, position + 1, fix


def _draft(decoder: Decoder, logits: torch.Tensor, answer: list[int]):
    """The MTP draft for the position after the newest token, and its distribution."""
    logits = decoder.masked(logits, 0, answer)
    if decoder.sampling.greedy:
        return int(logits.argmax()), None
    q = decoder.sampling.probabilities(logits)
    return decoder.sample(q), q


def _verify(decoder: Decoder, logits: torch.Tensor, answer: list[int], draft: int, q):
    """Accept or reject ``draft`` against the main model; on rejection, the replacement."""
    logits = decoder.masked(logits, 0, answer)
    if decoder.sampling.greedy:
        best = int(logits.argmax())
        return best == draft, best
    p = decoder.sampling.probabilities(logits)
    ratio = (p[draft] / q[draft].clamp(min=1e-12)).clamp(max=1.0)
    if decoder.uniform() < float(ratio):
        return True, draft
    residual = (p - q).clamp(min=0)
    residual = residual / residual.sum() if residual.sum() > 0 else p
    return False, decoder.sample(residual)
