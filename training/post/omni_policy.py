"""Omni models as SnapPO policies: prompts with media, and answers in any output modality.

Only public Omni API is used: the HF-native path (``omni.hf.prepare_media`` and the chat
template shipped with the text tokenizer) renders a prompt's ids and prepares its media for
scoring, and ``omni.generate_batch`` samples answers, decoding image codes to pixels and
speech units to a waveform, so the checkers can reward them. The two agree on the prompt ids
(tests/test_hf_native.py checks the chat template against the processor).

A prompt's ``messages`` use transformers' chat format with media as file paths, e.g.
``[{"role": "user", "content": [{"type": "image", "image": "scene.png"},
{"type": "text", "text": "What colour is it?"}]}]``, so a rollout can store them as JSON.
"""

from __future__ import annotations

from typing import Any

import torch

import omni
from omni.hf import prepare_media
from training.post.generate_stage import Prompt, Sampler


def omni_prompt(
    model: torch.nn.Module, tokenizer: Any, messages: list[dict[str, Any]], meta: dict[str, Any]
) -> Prompt:
    """The prompt ids of ``messages`` as the policy sees them (chat template, one placeholder
    slot per encoder embedding), up to the assistant turn."""
    prepared, _ = prepare_media(model, messages)
    ids = tokenizer.apply_chat_template(
        prepared, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return Prompt([int(i) for i in ids], meta, messages)


def _pipeline_inputs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """transformers' typed content items -> the plain items ``omni.generate`` takes."""
    plain = []
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, list):
            content = [item[item["type"]] if isinstance(item, dict) else item for item in content]
        plain.append({**message, "content": content})
    return plain


def _answer(result: Any, out_modality: str) -> Any:
    if out_modality == "image":
        return result.image
    if out_modality == "audio":
        first, second = result.audio  # (sample_rate, wave) today; read either order
        return (second, first) if isinstance(first, int) else (first, second)
    return result.text


def omni_sampler(
    out_modality: str, max_new_tokens: int, temperature: float = 1.0, **options: Any
) -> Sampler:
    """Sample G answers of ``out_modality`` with the policy folder's Omni pipeline; ``options``
    go to ``omni.generate_batch`` (e.g. ``steps`` of the image decoder, ``voice``)."""
    if out_modality not in ("text", "image", "audio"):
        raise ValueError(f"out_modality must be text, image or audio, not {out_modality!r}")

    def sample(model, prompt, group_size, seed):
        if not prompt.messages:
            raise ValueError("the Omni sampler needs each prompt's chat messages (omni_prompt)")
        pipeline = omni.load(model.name_or_path)  # the policy snapshot's folder
        requests = [_pipeline_inputs(prompt.messages)] * group_size
        results = omni.generate_batch(
            requests,
            out_modality,
            model=pipeline,
            temperature=temperature,
            seed=seed,
            max_new_tokens=max_new_tokens,
            **options,
        )
        return [(list(r.tokens), _answer(r, out_modality)) for r in results]

    sample.description = {
        "sampler": "omni",
        "out_modality": out_modality,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        **{k: repr(v) for k, v in options.items()},
    }
    return sample
