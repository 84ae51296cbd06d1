"""MTP self-speculative decoding, one request or a batch, drafting only while drafts pay.

DeepSeek-V3 / K-EXAONE style: after each verified token ``a`` the MTP module drafts a chain of
up to k tokens ``d1 .. dk`` (``omni.drafting``: the one MTP layer applied to itself); one
forward of the main model over ``[a, d1 .. dk]`` checks every draft and yields the token after
the last accepted one. Rejected drafts are cut from the cache (``cache.crop``). Greedy output
equals plain greedy output; with sampling each draft is accepted with probability
``min(1, p(d) / q(d))`` in turn, and the first rejection resamples from ``max(0, p - q)``,
which keeps the output distribution exactly the main model's (Leviathan et al. 2023).

A batch shares one cache, and a cache crops all its rows at once: the rejected columns common
to every row are cropped, and a row's other rejected columns are masked out (ragged rows).

A rejected draft costs a wider forward and an MTP step for no gain, so a model whose drafts
are rarely accepted decodes slower than plainly. ``SpeculationPolicy`` watches the acceptance
of the last few drafts and pauses drafting when it is too low to pay; while paused it probes
with one draft now and then (less often after each failed probe), and resumes once accepted
probes lift the recent acceptance again. While paused, the main model's hidden states are kept
and given to the MTP module in one step when the next draft is due, so pausing costs nothing.
The chain's depth follows the measured acceptance at each depth (or is fixed per request).
For a batch there is one policy: it pauses, probes and deepens for all rows together, from the
verdicts of every row.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from omni.decoding import MAX_DRAFT_TOKENS, Column, Decoder
from omni.drafting import CacheMask, DraftState
from omni.processor import OmniBatch


@dataclass
class SpeculationPolicy:
    """Draft while the last ``window`` drafts were accepted at least ``min_acceptance`` of the
    time; otherwise probe with one draft after ``probe_every`` plain steps, doubling that gap
    (up to ``max_probe_every``) after each rejected probe, and probing again after one step
    when a probe is accepted.

    With one extra token per accepted draft and about one plain step's cost per draft step, a
    draft pays once acceptance exceeds the relative cost of the wider forward and the MTP step;
    a quarter is a safe margin over that for the backbones here.

    The chain is ``depth`` drafts long when given; otherwise it is as deep as the drafts whose
    estimated chance of acceptance (the product of the conditional acceptances measured at each
    depth over the recent chains) is at least ``min_chain_acceptance``, up to ``max_depth``. A
    depth not yet tried is assumed as good as the deepest measured one, so the chain deepens one
    step at a time while its drafts keep being accepted."""

    window: int = 6
    min_acceptance: float = 0.25
    probe_every: int = 16
    max_probe_every: int = 256
    depth: int | None = None
    max_depth: int = MAX_DRAFT_TOKENS
    min_chain_acceptance: float = 0.5
    recent: deque = field(init=False)
    chains: deque = field(init=False)
    since_draft: int = field(init=False, default=0)
    gap: int = field(init=False)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.window)
        self.chains = deque(maxlen=4 * self.window)
        self.gap = self.probe_every

    @property
    def drafting(self) -> bool:
        """True while recent acceptance pays (and until a window of drafts has been seen)."""
        if len(self.recent) < self.window:
            return True
        return sum(self.recent) / len(self.recent) >= self.min_acceptance

    def should_draft(self) -> bool:
        return self.drafting or self.since_draft >= self.gap

    def draft_depth(self) -> int:
        """How many tokens the next chain drafts."""
        if self.depth is not None:
            return self.depth
        chosen, reach = 1, 1.0
        for depth, rate in enumerate(self.depth_acceptance(), start=1):
            reach *= rate
            if reach < self.min_chain_acceptance:
                break
            chosen = depth
        return min(chosen, self.max_depth)

    def depth_acceptance(self) -> list[float]:
        """Over the recent chains, the acceptance at each depth of the drafts whose earlier
        drafts were accepted; one depth past the measured ones, the deepest measured rate."""
        rates: list[float] = []
        for depth in range(1, self.max_depth + 1):
            verdicts = [n >= depth for k, n in self.chains if k >= depth and n >= depth - 1]
            if not verdicts:
                rates.extend(rates[-1:])
                break
            rates.append(sum(verdicts) / len(verdicts))
        return rates

    def record(self, accepted: int, depth: int = 1) -> None:
        """One chain's verdict: how many of its ``depth`` drafts were accepted (a bool for
        one draft)."""
        self.chains.append((depth, int(accepted)))
        probe = not self.drafting
        accepted = accepted > 0
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


@torch.no_grad()
def speculative_columns(
    decoder: Decoder, batch: OmniBatch, policy: SpeculationPolicy | None = None
) -> Iterator[Column]:
    """Speculative decoding of a (left-padded) batch: yields the tokens each step adds."""
    policy = policy or SpeculationPolicy()
    batch, out, cache = decoder.prefill(batch, want_hidden=True)
    start = time.perf_counter()
    rows = batch.input_ids.shape[0]
    tokens = [decoder.choose(out.logits[row, -1], row, []) for row in range(rows)]
    start = yield from decoder.hand_over(
        [decoder.emit(row, [token]) for row, token in enumerate(tokens)], start
    )
    prompt_next = torch.cat([batch.input_ids[:, 1:], decoder.ids(tokens).unsqueeze(1)], dim=1)
    drafts = DraftState(
        decoder.model, out.last_hidden_state, prompt_next, batch.position_ids, batch.attention_mask
    )
    step = _Step(decoder, drafts, cache, batch.attention_mask, batch.position_ids[:, -1] + 1)
    while not all(decoder.done(answer) for answer in decoder.answers):
        budget = min(
            decoder.max_new_tokens - len(a) for a in decoder.answers if not decoder.done(a)
        )
        drafting = policy.should_draft()
        depth = min(policy.draft_depth(), budget - 1) if drafting else 0
        if depth:
            for accepted in step.run(tokens, depth):
                policy.record(accepted, depth)
        else:  # paused, or one token left to decode
            if not drafting:
                policy.skip()
                decoder.stats.paused_steps += 1
            step.run(tokens, 0)
        start = yield from decoder.hand_over(step.column, start)
    decoder.finish(start)


class _Step:
    """One draft-and-verify step of the batch; it keeps the main cache's mask and each row's
    position, and leaves each row's newest token in ``tokens``."""

    def __init__(self, decoder: Decoder, drafts: DraftState, cache, mask, positions) -> None:
        self.decoder, self.drafts, self.cache = decoder, drafts, cache
        self.mask, self.positions = CacheMask(mask), positions  # of each row's newest token
        self.column: Column = []
        # Holes in a row's cache would shift a sliding window (it counts cached columns, not
        # positions), so there rows keep the same number of tokens per step and never hold any.
        # Keeping fewer tokens than were accepted is exact: the next token of a row that
        # accepted more is its accepted draft, and when the row stops depends on other rows only.
        self.ragged = mask.shape[0] > 1 and not any(cache.is_sliding)
        self._next: tuple[int, torch.Tensor | None] = (-1, None)  # one-row path: next input
        self._one = torch.ones((1, 1), dtype=torch.long, device=decoder.device)

    def run(self, tokens: list[int], depth: int) -> list[int]:
        """Draft ``depth`` tokens per running row (none: a plain step), verify them in one
        forward, keep what is accepted; the number of accepted drafts of each running row."""
        if not depth and len(tokens) == 1 and self.mask.mask is None:
            return self._plain_single(tokens)
        decoder = self.decoder
        running = [not decoder.done(answer) for answer in decoder.answers]
        chains, qs = self._draft(depth, running) if depth else ([[] for _ in running], {})
        width = depth + 1
        ids = [
            [t, *c] if run else [decoder.pad] * width for t, c, run in zip(tokens, chains, running)
        ]
        offsets = torch.arange(width, device=decoder.device)
        self.mask.extend(decoder.ids(running).unsqueeze(1).expand(-1, width))
        out = decoder.model(
            input_ids=decoder.ids(ids),
            attention_mask=self.mask.value(),
            position_ids=self.positions.unsqueeze(1) + offsets,
            cache=self.cache,
            use_cache=True,
            return_hidden=True,
        )
        decoder.stats.forwards += 1
        kept, verdicts = [[decoder.pad] for _ in running], []
        for row in (row for row, run in enumerate(running) if run):
            accepted, fix = _verify_chain(decoder, out.logits[row], row, chains[row], qs.get(row))
            if depth:
                decoder.stats.count_chain(depth, accepted)
                verdicts.append(accepted)
            kept[row] = [*chains[row][:accepted], *([] if fix is None else [fix])]
        if not self.ragged:  # every row keeps as many tokens as the shortest: no holes
            shortest = min(len(k) for k, run in zip(kept, running) if run)
            kept = [k[:shortest] for k in kept]
        self.column = [
            decoder.emit(r, k) if run else [] for r, (k, run) in enumerate(zip(kept, running))
        ]
        for row in (row for row, run in enumerate(running) if run):
            tokens[row] = kept[row][-1]
        self.drafts.drop_chain(depth)
        self._keep(out.last_hidden_state, kept, width)
        return verdicts

    def _plain_single(self, tokens: list[int]) -> list[int]:
        """A step without drafts of one unpadded row: one token in, one out, its state queued
        for the next draft. Such a row never holds a hole, so the general step's masks, crops
        and ragged bookkeeping, which cost a paused step several percent, are skipped."""
        decoder = self.decoder
        positions = self.positions.unsqueeze(1)
        if self._next[0] != tokens[0]:
            self._next = (tokens[0], decoder.ids([[tokens[0]]]))
        out = decoder.model(
            input_ids=self._next[1],
            position_ids=positions,
            cache=self.cache,
            use_cache=True,
            return_hidden=True,
        )
        decoder.stats.forwards += 1
        tokens[0] = decoder.choose(out.logits[0, -1], 0, decoder.answers[0])
        self.column = [decoder.emit(0, [tokens[0]])]
        # This step's next id is the next step's input, so one tensor serves both.
        self._next = (tokens[0], decoder.ids([[tokens[0]]]))
        self.drafts.add(out.last_hidden_state, self._next[1], positions, self._one)
        self.positions = self.positions + 1
        return []

    def _draft(self, depth: int, running: list[bool]):
        """Each running row's chain of drafts and, when sampling, their distributions."""
        decoder, qs = self.decoder, {}

        def pick(row: int, logits: torch.Tensor, drafted: list[int]) -> int:
            if not running[row] or decoder.end_turn in drafted:
                return decoder.pad  # nothing follows the end of the turn
            token, q = _draft(decoder, logits, [*decoder.answers[row], *drafted], row)
            qs.setdefault(row, []).append(q)
            return token

        return self.drafts.chain(depth, self.positions, pick), qs

    def _keep(self, hidden: torch.Tensor, kept: list[list[int]], width: int) -> None:
        """Cut the rejected columns every row shares from the cache, mask out the rest, and
        queue the kept positions' states for the MTP module."""
        decoder = self.decoder
        counts = [len(k) if not decoder.done(a) else 0 for k, a in zip(kept, decoder.answers)]
        if not any(counts):
            return  # every row is done
        common = width - max(counts)
        if common:
            self.cache.crop(-common)
            self.mask.crop(common)
        width -= common
        valid = decoder.ids([[int(i < n) for i in range(width)] for n in counts])
        self.mask.hide(valid)
        next_ids = decoder.ids([(k + [decoder.pad] * width)[:width] for k in kept])
        positions = self.positions.unsqueeze(1) + torch.arange(width, device=decoder.device)
        self.drafts.add(hidden[:, :width], next_ids, positions, valid)
        self.positions = self.positions + torch.tensor(counts, device=decoder.device)


def _verify_chain(decoder: Decoder, logits: torch.Tensor, row: int, chain: list[int], qs):
    """How many of ``chain`` the main model accepts (``logits[i]`` is its prediction for the
    place of ``chain[i]``), and the token after them: a correction, the bonus token after a
    fully accepted chain, or None after an accepted end of turn."""
    answer = decoder.answers[row]
    for index, draft in enumerate(chain):
        prefix = [*answer, *chain[:index]]
        accepted, fix = _verify(
            decoder, logits[index], prefix, draft, qs[index] if qs else None, row
        )
        if not accepted:
            return index, fix
        if draft == decoder.end_turn:
            return index + 1, None
    return len(chain), decoder.choose(logits[len(chain)], row, [*answer, *chain])


def _draft(decoder: Decoder, logits: torch.Tensor, answer: list[int], row: int):
    """The MTP draft for the position after ``answer``, and its distribution when sampling."""
    logits = decoder.masked(logits, row, answer)
    if decoder.sampling.greedy:
        return int(logits.argmax()), None
    q = decoder.sampling.probabilities(logits)
    return decoder.sample(q), q


def _verify(decoder: Decoder, logits: torch.Tensor, answer: list[int], draft: int, q, row: int):
    """Accept or reject ``draft`` against the main model; on rejection, the replacement."""
    logits = decoder.masked(logits, row, answer)
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
