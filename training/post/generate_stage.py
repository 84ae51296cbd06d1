"""SnapPO's generate stage: a frozen policy snapshot samples G responses per prompt.

A *sampler* turns (policy, prompt ids, G, seed) into G (response ids, decoded answer) pairs,
and carries a ``description`` (its kind and settings) that goes into the rollout's key;
the stage then scores every sampled token under the same policy with ``response_logps`` (as
TRL recomputes its old log-probs), so the importance ratios of the train stage start at
exactly 1 for the generating policy. ``causal_lm_sampler`` samples with transformers'
``generate``; a sampler over Omni's pipeline (images and speech decoded for the checkers) plugs
in the same way. The rollout's key hashes the policy key, the prompts, the settings and the
sampler's description, so re-running an unchanged generate stage samples nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training.post.policy import load_policy, media_for_rows, prompt_media, response_logps
from training.post.rollouts import write_rollout
from training.post.snapshots import SnapshotStore, content_hash

# (policy model, prompt, G, seed) -> G x (response ids, decoded answer)
Sampler = Callable[[torch.nn.Module, "Prompt", int, int], list[tuple[list[int], Any]]]


@dataclass(frozen=True)
class Prompt:
    """One prompt: its ids (the rendered chat up to the assistant turn), the sample's meta and,
    for Omni policies, the chat ``messages`` (transformers' format, media as file paths), from
    which the continuous inputs (images, audio) are prepared again whenever it is scored."""

    ids: list[int]
    meta: dict[str, Any]
    messages: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class GenerateSettings:
    group_size: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"group_size must be at least 2 (got {self.group_size})")


@dataclass(frozen=True)
class GenerateStageResult:
    """``seconds`` in all; ``sampling_seconds`` of it sampling, the rest re-scoring tokens."""

    key: str
    computed: bool
    responses: int
    seconds: float
    sampling_seconds: float = 0.0


def causal_lm_sampler(
    decode: Callable[[list[int]], Any], max_new_tokens: int, eos_id: int, temperature: float = 1.0
) -> Sampler:
    """Sample with ``model.generate``; each response ends at ``eos_id`` (kept) or the budget."""

    def sample(model, prompt, group_size, seed):
        torch.manual_seed(seed)
        ids = torch.tensor([prompt.ids] * group_size)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos_id,
            pad_token_id=eos_id,
        )
        responses = []
        for row in out[:, len(prompt.ids) :].tolist():
            row = row[: row.index(eos_id) + 1] if eos_id in row else row
            responses.append((row, decode(row)))
        return responses

    sample.description = {
        "sampler": "causal_lm",
        "max_new_tokens": max_new_tokens,
        "eos_id": eos_id,
        "temperature": temperature,
    }
    return sample


def _pad(rows: Sequence[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids, mask = torch.zeros(len(rows), width, dtype=torch.long), torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span], mask[i, span] = torch.tensor(row, dtype=torch.long), 1.0
    return ids, mask


def _score_group(model, index, prompt, prompt_ids, prompt_mask, tokens, mask, group):
    """Log-probs of one prompt's G responses (one forward per group bounds the memory)."""
    rows = slice(index * group, (index + 1) * group)
    return response_logps(
        model,
        prompt_ids[index].expand(group, -1),
        prompt_mask[index].expand(group, -1),
        tokens[rows],
        mask[rows],
        media_for_rows([prompt_media(model, prompt.messages)], [0] * group),
    )


def generate_key(
    policy_key: str, prompts: Sequence[Prompt], sampler: Sampler, settings: GenerateSettings
) -> str:
    spec = {
        "stage": "generate",
        "policy": policy_key,
        "prompts": [dataclasses.asdict(p) for p in prompts],
        "sampler": getattr(sampler, "description", f"{sampler.__module__}.{sampler.__qualname__}"),
        "settings": dataclasses.asdict(settings),
    }
    return content_hash(spec)


def run_generate_stage(
    store: SnapshotStore,
    policy_key: str,
    prompts: Sequence[Prompt],
    sampler: Sampler,
    settings: GenerateSettings = GenerateSettings(),
) -> GenerateStageResult:
    """Sample ``group_size`` responses per prompt and save them as a rollout snapshot."""
    if not prompts or any(not p.ids for p in prompts):
        raise ValueError("need at least one prompt, each with at least one token id")
    key = generate_key(policy_key, prompts, sampler, settings)
    if store.exists("rollouts", key):
        return GenerateStageResult(key, False, len(prompts) * settings.group_size, 0.0)
    model = load_policy(store, policy_key).eval()
    group, start = settings.group_size, time.perf_counter()
    with torch.no_grad():
        sampled = [
            response
            for index, prompt in enumerate(prompts)
            for response in sampler(model, prompt, group, settings.seed + index)
        ]
        sampling_seconds = time.perf_counter() - start
        prompt_ids, prompt_mask = _pad([p.ids for p in prompts], left=True)
        tokens, mask = _pad([ids or [0] for ids, _ in sampled], left=False)
        mask[[i for i, (ids, _) in enumerate(sampled) if not ids]] = 0.0  # empty responses
        padded = (prompt_ids, prompt_mask, tokens, mask)
        logps = torch.cat(
            [_score_group(model, i, p, *padded, group) for i, p in enumerate(prompts)]
        )
    write_rollout(
        store,
        key,
        policy=policy_key,
        samples=[p.meta for p in prompts],
        group_size=group,
        tokens=tokens,
        logps=logps,
        mask=mask,
        answers=[answer for _, answer in sampled],
        prompt_tokens=prompt_ids,
        prompt_mask=prompt_mask,
        messages=[p.messages for p in prompts],
    )
    seconds = time.perf_counter() - start
    return GenerateStageResult(key, True, len(sampled), seconds, sampling_seconds)
