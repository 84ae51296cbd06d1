"""The token loop: constrained sampling over a KV cache, as a generator of token columns.

Written by hand rather than through ``GenerationMixin.generate`` because two things here have
no switch there: rollback of the cache when an MTP draft is rejected (``omni.speculation``),
and a loop that hands each step's tokens to its consumer as they are chosen (nanochat's
``engine.py`` pattern), so streaming, batching and speculation share one loop and no thread.
The output constraints are the same objects transformers' ``generate`` takes as logits
processors (``omni.constraints.ConstrainedLogits``).

Every tensor the loop makes is made on the model's device, and its random generator lives
there too; ``seed=None`` draws fresh entropy on every call, a seed reproduces exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from omni.compiled import decode_step, static_cache, whole_cache_mask
from omni.constraints import OutputConstraint
from omni.placement import execution_device
from omni.processor import OmniBatch

# One step of the loop: for each row of the batch, the tokens it gained in that step.
Column = list[list[int]]

MAX_DRAFT_TOKENS = 4  # the longest chain of MTP drafts verified in one forward


@dataclass
class Sampling:
    """``temperature == 0`` is greedy; ``top_k == 0`` and ``top_p == 1`` disable those filters.

    The values are checked by ``omni.options.GenerationOptions``, which builds this."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

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
    paused_steps: int = 0  # speculative decoding: steps the policy decoded without a draft
    prefill_s: float = 0.0
    decode_s: float = 0.0
    # Per draft depth (index 0 is the first draft of a chain): drafts made, drafts accepted.
    depth_drafts: list[int] = field(default_factory=lambda: [0] * MAX_DRAFT_TOKENS)
    depth_accepted: list[int] = field(default_factory=lambda: [0] * MAX_DRAFT_TOKENS)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafts if self.drafts else None

    @property
    def depth_acceptance(self) -> list[float | None]:
        """Acceptance at each depth: accepted drafts at that depth over drafts made there."""
        return [a / d if d else None for a, d in zip(self.depth_accepted, self.depth_drafts)]

    def count_chain(self, depth: int, accepted: int) -> None:
        """One row's chain of ``depth`` drafts, of which the first ``accepted`` were kept."""
        for index in range(depth):
            self.depth_drafts[index] += 1
            self.depth_accepted[index] += index < accepted
        self.drafts += depth
        self.accepted += accepted


class Decoder:
    """Runs the token loop of one request batch against an Omni model, on its device."""

    def __init__(
        self,
        model,
        constraints: list[OutputConstraint],
        sampling: Sampling,
        max_new_tokens: int,
        compiled: bool = False,
    ) -> None:
        self.model = model
        self.compiled = compiled  # plain decoding on a static cache, compiled (omni.compiled)
        self.device = execution_device(model)  # a model spread over devices starts there
        self.constraints = constraints
        self.sampling = sampling
        self.max_new_tokens = max_new_tokens
        self.generator = torch.Generator(device=self.device)
        if sampling.seed is None:
            self.generator.seed()  # fresh entropy: two unseeded calls sample differently
        else:
            self.generator.manual_seed(sampling.seed)
        self.end_turn = model.layout.special_id("<|endofturn|>")
        self.pad = model.layout.special_id("<|pad|>")
        self.stats = DecodeStats()
        self.answers: list[list[int]] = []
        self._masks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def ids(self, values: list) -> torch.Tensor:
        """A long tensor on the model's device."""
        return torch.tensor(values, dtype=torch.long, device=self.device)

    # --- choosing tokens -----------------------------------------------------------------
    def allowed(self, row: int, answer: list[int]) -> torch.Tensor:
        """The constraint's mask for the token after ``answer``, cached on the device."""
        mask = self.constraints[row].allowed(answer, self.max_new_tokens - len(answer))
        # Constraints hand out a few fixed masks; each is copied to the device once. The CPU
        # mask is kept beside its copy, so its id cannot be reused by another object.
        if id(mask) not in self._masks:
            self._masks[id(mask)] = (mask, mask.to(self.device))
        return self._masks[id(mask)][1]

    def masked(self, logits: torch.Tensor, row: int, answer: list[int]) -> torch.Tensor:
        allowed = self.allowed(row, answer)
        return logits.masked_fill(~allowed[: logits.shape[-1]], float("-inf"))

    def sample(self, probs: torch.Tensor) -> int:
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.generator, device=self.device))

    def choose(self, logits: torch.Tensor, row: int, answer: list[int]) -> int:
        """One token for ``row`` from its last-position logits under its constraint."""
        logits = self.masked(logits, row, answer)
        if self.sampling.greedy:
            return int(logits.argmax())
        return self.sample(self.sampling.probabilities(logits))

    def emit(self, row: int, tokens: list[int]) -> list[int]:
        """Append ``tokens`` to the row's answer within its budget; the ones kept."""
        answer = self.answers[row]
        kept = []
        for token in tokens[: self.max_new_tokens - len(answer)]:
            if self.end_turn in answer:
                break
            answer.append(token)
            kept.append(token)
        return kept

    def done(self, answer: list[int]) -> bool:
        return len(answer) >= self.max_new_tokens or self.end_turn in answer

    # --- prefill -------------------------------------------------------------------------
    def prefill(self, batch: OmniBatch, want_hidden: bool):
        """The prompt's forward; the batch (ids, mask, positions, media) moves to the device."""
        batch = batch.to(self.device)
        if self.compiled:
            cache = static_cache(self.model, batch.input_ids.shape[1] + self.max_new_tokens)
        else:
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
        self.answers = [[] for _ in range(batch.input_ids.shape[0])]
        return batch, out, cache

    # --- plain decoding ------------------------------------------------------------------
    @torch.no_grad()
    def columns(self, batch: OmniBatch) -> Iterator[Column]:
        """Token-by-token decoding of a (left-padded) batch: yields each step's tokens."""
        batch, out, cache = self.prefill(batch, want_hidden=False)
        rows = batch.input_ids.shape[0]
        # A single unpadded row never needs a mask (its finished state ends the loop).
        mask = batch.attention_mask if rows > 1 or not bool(batch.attention_mask.all()) else None
        step = self.model
        if self.compiled:
            step = decode_step(self.model)
            mask = None if mask is None else whole_cache_mask(mask, cache)
        positions = batch.position_ids[:, -1:]
        logits = out.logits[:, -1]
        start = time.perf_counter()
        while True:
            next_ids, column = [], []
            for row, answer in enumerate(self.answers):
                if self.done(answer):
                    next_ids.append(self.pad)
                    column.append([])
                    continue
                token = self.choose(logits[row], row, answer)
                column.append(self.emit(row, [token]))
                next_ids.append(token)
            start = yield from self.hand_over(column, start)
            if all(self.done(a) for a in self.answers):
                break
            if mask is not None and not self.compiled:
                running = self.ids([0 if self.done(a) else 1 for a in self.answers])
                mask = torch.cat([mask, running.unsqueeze(1)], dim=1)
            positions = positions + 1
            out = step(
                input_ids=self.ids(next_ids).unsqueeze(1),
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
            )
            self.stats.forwards += 1
            logits = out.logits[:, -1]
        self.finish(start)

    def hand_over(self, column: Column, start: float) -> Iterator[Column]:
        """Yield a column; ``decode_s`` counts the loop's own time, not its consumer's (a
        streaming vocoder), so the clock restarts when the loop resumes."""
        self.stats.decode_s += time.perf_counter() - start
        yield column
        return time.perf_counter()

    def finish(self, start: float) -> None:
        self.stats.decode_s += time.perf_counter() - start
        self.stats.new_tokens = sum(len(a) for a in self.answers)


def supports_speculation(model) -> bool:
    """True when the model has an MTP module to draft with."""
    return getattr(model, "mtp", None) is not None


def speculates_by_default(model, out_modality: str | None = None) -> bool:
    """True when the model drafts unless a request says otherwise: it has an MTP module, and
    its ``generation_config.json`` does not turn drafting off (``"speculative": false``, written
    by ``omni pipeline assemble --speculative-default off`` for a model whose drafts do not
    pay) or limit it to other output modalities (``"speculative": ["text"]``, written by
    ``--speculative-default text``)."""
    config = getattr(model, "generation_config", None)
    value = getattr(config, "speculative", True)
    if isinstance(value, (list, tuple)):
        return supports_speculation(model) and out_modality in value
    return supports_speculation(model) and value is not False
