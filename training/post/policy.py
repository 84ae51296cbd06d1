"""The policy as the losses see it: per-token log-probabilities of sampled responses.

Reached only through the transformers causal-LM interface (``input_ids``, ``attention_mask``
-> ``logits``), so any backbone, or an Omni model over its unified vocabulary, is a policy;
image codes and speech units are scored exactly as text tokens are.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

import omni  # noqa: F401  (registers the Omni model with the Auto classes, for load_policy)
from omni.hf import prepare_media
from training.post.snapshots import SnapshotStore, content_hash, tensor_digest


def response_logps(
    model: torch.nn.Module,
    prompt_tokens: torch.Tensor,
    prompt_mask: torch.Tensor,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    media: dict[str, list] | None = None,
) -> torch.Tensor:
    """log pi(o_t | prompt, o_<t) for each response token: (N, T).

    Rows are [left-padded prompt | right-padded response]; the logit at position p predicts
    the token at p + 1, so the response's T tokens are scored by positions P - 1 ... P + T - 2.
    ``media`` (an Omni model's continuous inputs, items in row order) fill the prompts'
    placeholder slots.
    """
    if prompt_tokens.shape[0] != tokens.shape[0]:
        raise ValueError(
            f"{prompt_tokens.shape[0]} prompt rows for {tokens.shape[0]} responses; repeat each "
            "prompt once per response of its group"
        )
    input_ids = torch.cat([prompt_tokens, tokens], dim=1)
    attention_mask = torch.cat([prompt_mask, mask], dim=1).long()
    extra = {"media": media} if media else {}
    logits = model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
    start = prompt_tokens.shape[1] - 1
    scoring = logits[:, start : start + tokens.shape[1]].float()
    return torch.log_softmax(scoring, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def prompt_media(model: torch.nn.Module, messages: list[dict[str, Any]] | None) -> dict | None:
    """The continuous inputs of one prompt's chat (``None`` without media)."""
    if not messages:
        return None
    return prepare_media(model, messages)[1] or None


def media_for_rows(per_prompt: Sequence[dict | None], prompt_of_row: Sequence[int]) -> dict | None:
    """Media items for a batch of rows, in row order, as the model's ``media`` argument wants."""
    media: dict[str, list] = {}
    for prompt in prompt_of_row:
        for kind, items in (per_prompt[prompt] or {}).items():
            media.setdefault(kind, []).extend(items)
    return media or None


def policy_key(model: torch.nn.Module) -> str:
    """Content hash of a policy's weights (names, dtypes, shapes, bytes)."""
    return content_hash({name: tensor_digest(p) for name, p in model.state_dict().items()})


def _top_level_weights(source: Path) -> Callable[[str, list[str]], list[str]]:
    def ignore(directory: str, names: list[str]) -> list[str]:
        if Path(directory) != source:
            return []
        return [n for n in names if n == "record.json" or n.startswith("model.safetensors")]

    return ignore


def publish_policy(
    store: SnapshotStore,
    key: str,
    model: PreTrainedModel,
    origin: dict,
    source: Path | None = None,
) -> None:
    """Store ``model`` under ``key``, carrying over from the ``source`` folder every file the
    model does not write itself (text tokenizer, chat template, an Omni folder's code
    tokenizers and decoders), so each snapshot stays a complete, loadable folder."""

    def fill(folder: Path) -> None:
        if source is not None:
            shutil.copytree(source, folder, dirs_exist_ok=True, ignore=_top_level_weights(source))
        model.save_pretrained(folder)

    store.publish("policies", key, {"origin": origin}, fill)


def save_policy(
    store: SnapshotStore, model: PreTrainedModel, source: str | os.PathLike | None = None
) -> str:
    """Store a policy snapshot under the hash of its weights; ``source``, the folder it was
    loaded from, lends its other files (tokenizer...)."""
    key = policy_key(model)
    if not store.exists("policies", key):
        origin = {"source": os.fspath(source)} if source else {}
        publish_policy(store, key, model, origin, Path(source) if source else None)
    return key


def load_policy(store: SnapshotStore, key: str) -> PreTrainedModel:
    folder: Path = store.folder("policies", key)
    if not folder.is_dir():
        raise ValueError(f"no policy snapshot {key} under {store.root}; save_policy it first")
    return AutoModelForCausalLM.from_pretrained(os.fspath(folder))
