"""The token loop: constrained sampling over a KV cache, batched or MTP-speculative.

Written by hand rather than through ``GenerationMixin.generate`` because three things here
have no switch there: output constraints that follow the answer's block structure, rollback
of the cache when an MTP draft is rejected, and a per-token callback for streaming.

Self-speculative decoding (DeepSeek-V3 / K-EXAONE style): after each verified token ``a``
the MTP module drafts the token after it, ``d``; one forward of the main model over
``[a, d]`` both checks ``d`` and yields the token after ``d``. A rejected draft is cut from
the cache (``cache.crop(-1)``). Greedy output equals plain greedy output; with sampling the
draft is accepted with probability ``min(1, p(d) / q(d))`` and a rejection resamples from
``max(0, p - q)``, which keeps the output distribution exactly the main model's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from omni.constraints import OutputConstraint
from omni.processor import OmniBatch

OnTokens = Callable[[int, list[int]], None]


@dataclass
class Sampling:
    """``temperature == 0`` is greedy; ``top_k == 0`` and ``top_p == 1`` disable those filters."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Filtered, tempered distribution over the vocabulary (rows of ``logits``)."""
        logits = logits.float() / self.temperature
        if self.top_k:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = sorted_logits.softmax(-1).cumsum(-1)
            drop = cumulative - sorted_logits.softmax(-1) >= self.top_p
            logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        return logits.softmax(-1)


@dataclass
class DecodeStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    forwards: int = 0
    drafts: int = 0
    accepted: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafts if self.drafts else None


@dataclass
class DecodeOutput:
    sequences: list[list[int]]
    stats: DecodeStats = field(default_factory=DecodeStats)


def _masked(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~allowed[: logits.shape[-1]].to(logits.device), float("-inf"))


class Decoder:
    """Runs the token loop of one request batch against an Omni model."""

    def __init__(
        self,
        model,
        constraints: list[OutputConstraint],
        sampling: Sampling,
        max_new_tokens: int,
        on_tokens: OnTokens | None = None,
    ) -> None:
        self.model = model
        self.constraints = constraints
        self.sampling = sampling
        self.max_new_tokens = max_new_tokens
        self.on_tokens = on_tokens
        self.generator = torch.Generator()
        self.generator.manual_seed(sampling.seed if sampling.seed is not None else 0)
        self.end_turn = model.layout.special_id("<|endofturn|>")
        self.pad = model.layout.special_id("<|pad|>")
        self.stats = DecodeStats()

    # --- choosing tokens -----------------------------------------------------------------
    def choose(self, logits: torch.Tensor, row: int, answer: list[int]) -> int:
        """One token for ``row`` from its last-position logits under its constraint."""
        remaining = self.max_new_tokens - len(answer)
        logits = _masked(logits, self.constraints[row].allowed(answer, remaining))
        if self.sampling.greedy:
            return int(logits.argmax())
        probs = self.sampling.probabilities(logits)
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def _emit(self, row: int, answers: list[list[int]], tokens: list[int]) -> list[int]:
        room = self.max_new_tokens - len(answers[row])
        kept = []
        for token in tokens[:room]:
            if self.end_turn in answers[row]:
                break
            answers[row].append(token)
            kept.append(token)
        if kept and self.on_tokens is not None:
            self.on_tokens(row, kept)
        return kept

    def _done(self, answer: list[int]) -> bool:
        return len(answer) >= self.max_new_tokens or self.end_turn in answer

    # --- prefill -------------------------------------------------------------------------
    def _prefill(self, batch: OmniBatch, want_hidden: bool):
        cache = DynamicCache(config=self.model.config)
        cache.activate_past_recording()
        start = time.perf_counter()
        # An unpadded batch needs no mask: attention is then plain causal, which is cheaper.
        padded = not bool(batch.attention_mask.all())
        out = self.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask if padded else None,
            position_ids=batch.position_ids,
            media=batch.media,
            cache=cache,
            use_cache=True,
            return_hidden=want_hidden,
        )
        self.stats.prefill_s = time.perf_counter() - start
        self.stats.forwards += 1
        self.stats.prompt_tokens = int(batch.attention_mask.sum())
        return out, cache

    # --- plain decoding ------------------------------------------------------------------
    @torch.no_grad()
    def run(self, batch: OmniBatch) -> DecodeOutput:
        """Token-by-token decoding of a (left-padded) batch."""
        out, cache = self._prefill(batch, want_hidden=False)
        rows = batch.input_ids.shape[0]
        answers: list[list[int]] = [[] for _ in range(rows)]
        # A single unpadded row never needs a mask (its finished state ends the loop).
        mask = batch.attention_mask if rows > 1 or not bool(batch.attention_mask.all()) else None
        positions = batch.position_ids[:, -1:]
        logits = out.logits[:, -1]
        start = time.perf_counter()
        while True:
            next_ids = []
            for row in range(rows):
                if self._done(answers[row]):
                    next_ids.append(self.pad)
                    continue
                token = self.choose(logits[row], row, answers[row])
                self._emit(row, answers, [token])
                next_ids.append(token)
            if all(self._done(a) for a in answers):
                break
            if mask is not None:
                finished = torch.tensor([self._done(a) for a in answers])
                mask = torch.cat([mask, (~finished).long().unsqueeze(1)], dim=1)
            positions = positions + 1
            out = self.model(
                input_ids=torch.tensor(next_ids).unsqueeze(1),
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
            )
            self.stats.forwards += 1
            logits = out.logits[:, -1]
        self.stats.decode_s = time.perf_counter() - start
        self.stats.new_tokens = sum(len(a) for a in answers)
        return DecodeOutput(answers, self.stats)

    # --- MTP self-speculative decoding ---------------------------------------------------
    @torch.no_grad()
    def run_speculative(self, batch: OmniBatch) -> DecodeOutput:
        """Speculative decoding of a single request with the model's MTP draft head."""
        if batch.input_ids.shape[0] != 1:
            raise ValueError("speculative decoding runs one request at a time")
        model = self.model
        out, cache = self._prefill(batch, want_hidden=True)
        answer: list[int] = []
        start = time.perf_counter()
        position = int(batch.position_ids[0, -1])
        token = self.choose(out.logits[0, -1], 0, answer)
        self._emit(0, [answer], [token])
        # The MTP module reads (h_t, emb(x_{t+1})) for every position: prefill it over the prompt.
        prompt_next = torch.cat([batch.input_ids[:, 1:], torch.tensor([[token]])], dim=1)
        mtp_cache = DynamicCache(config=model.config)
        # One unpadded row: every step is plain causal attention, so no masks are passed.
        draft_logits, mtp_cache = model.mtp_step(
            out.last_hidden_state,
            prompt_next,
            position_ids=batch.position_ids,
            cache=mtp_cache,
            use_cache=True,
        )
        while not self._done(answer):
            draft, q = self._draft(draft_logits[0, -1], answer)
            self.stats.drafts += 1
            ids = torch.tensor([[token, draft]])
            positions = torch.tensor([[position + 1, position + 2]])
            out = model(
                input_ids=ids,
                position_ids=positions,
                cache=cache,
                use_cache=True,
                return_hidden=True,
            )
            self.stats.forwards += 1
            accepted, fix = self._verify(out.logits[0, 0], answer, draft, q)
            if accepted:
                self.stats.accepted += 1
                after = self.choose(out.logits[0, 1], 0, [*answer, draft])
                emitted = self._emit(0, [answer], [draft, after])
                hidden, next_ids = out.last_hidden_state, torch.tensor([[draft, after]])
                position += 2
                token = after
            else:
                cache.crop(-1)
                emitted = self._emit(0, [answer], [fix])
                hidden, next_ids = out.last_hidden_state[:, :1], torch.tensor([[fix]])
                position += 1
                token = fix
            if self._done(answer) or not emitted:
                break
            draft_logits, mtp_cache = model.mtp_step(
                hidden,
                next_ids,
                position_ids=torch.arange(position - hidden.shape[1] + 1, position + 1)[None],
                cache=mtp_cache,
                use_cache=True,
            )
        self.stats.decode_s = time.perf_counter() - start
        self.stats.new_tokens = len(answer)
        return DecodeOutput([answer], self.stats)

    def _draft(self, logits: torch.Tensor, answer: list[int]) -> tuple[int, torch.Tensor | None]:
        """The MTP draft for the position after the newest token, and its distribution."""
        allowed = self.constraints[0].allowed(answer, self.max_new_tokens - len(answer))
        logits = _masked(logits, allowed)
        if self.sampling.greedy:
            return int(logits.argmax()), None
        q = self.sampling.probabilities(logits)
        return int(torch.multinomial(q, 1, generator=self.generator)), q

    def _verify(self, logits: torch.Tensor, answer: list[int], draft: int, q) -> tuple[bool, int]:
        """Accept or reject ``draft`` against the main model; on rejection, the replacement."""
        remaining = self.max_new_tokens - len(answer)
        logits = _masked(logits, self.constraints[0].allowed(answer, remaining))
        if self.sampling.greedy:
            best = int(logits.argmax())
            return best == draft, best
        p = self.sampling.probabilities(logits)
        ratio = (p[draft] / q[draft].clamp(min=1e-12)).clamp(max=1.0)
        if float(torch.rand((), generator=self.generator)) < float(ratio):
            return True, draft
        residual = (p - q).clamp(min=0)
        residual = residual / residual.sum() if residual.sum() > 0 else p
        return False, int(torch.multinomial(residual, 1, generator=self.generator))


def supports_speculation(model) -> bool:
    """True when the model has an MTP module to draft with."""
    return getattr(model, "mtp", None) is not None
