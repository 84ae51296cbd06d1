"""The rollout snapshot: G sampled responses per prompt, as the generate stage leaves them.

Tensors (rows grouped by prompt, G consecutive rows each): ``tokens`` (N, T) int64, the
response ids in the unified vocabulary (text, image codes or speech units alike);
``logps`` (N, T) float32, their log-probabilities under the generating policy, which the
train stage needs for its importance ratios; ``mask`` (N, T), 1 on real response tokens;
and, for the train stage, ``prompt_tokens`` / ``prompt_mask`` (prompts, P), each prompt's ids
left-padded (the layout TRL uses: prompt then response in one row).

Record: ``group_size``, ``policy`` (the key of the policy snapshot that sampled), ``samples``
(one manifest ``meta`` per prompt, what the rewards check against) and ``answers``, one per
response: ``{"text": ...}``, or ``{"image": file}`` / ``{"audio": file}`` naming a PNG / WAV
beside the record, so the reward stage can score decoded outputs without loading any model;
and, for Omni policies, ``messages``: each prompt's chat, media as file paths, from which the
train stage prepares the continuous inputs again.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile
import torch
from PIL import Image

from training.post.snapshots import Snapshot, SnapshotStore


def _encode(index: int, answer: Any) -> tuple[dict[str, str], dict[str, bytes]]:
    if isinstance(answer, str):
        return {"text": answer}, {}
    buffer = io.BytesIO()
    if isinstance(answer, Image.Image):
        answer.save(buffer, format="PNG")
        name = f"response-{index:05d}.png"
        return {"image": name}, {name: buffer.getvalue()}
    if isinstance(answer, tuple) and len(answer) == 2:
        wave, sample_rate = answer
        soundfile.write(
            buffer,
            np.asarray(wave, dtype=np.float32),
            int(sample_rate),
            format="WAV",
            subtype="FLOAT",
        )
        name = f"response-{index:05d}.wav"
        return {"audio": name}, {name: buffer.getvalue()}
    raise ValueError(
        f"answer {index} is a {type(answer).__name__}; expected text (str), an image "
        "(PIL.Image) or speech as a (wave, sample_rate) pair"
    )


def write_rollout(
    store: SnapshotStore,
    key: str,
    *,
    policy: str,
    samples: Sequence[dict[str, Any]],
    group_size: int,
    tokens: torch.Tensor,
    logps: torch.Tensor,
    mask: torch.Tensor,
    answers: Sequence[Any],
    prompt_tokens: torch.Tensor | None = None,
    prompt_mask: torch.Tensor | None = None,
    messages: Sequence[list | None] | None = None,
) -> Snapshot:
    """Save one generate stage's output under ``key`` (the hash of its inputs)."""
    rows = len(samples) * group_size
    if rows == 0:
        raise ValueError("a rollout needs at least one prompt and one response per prompt")
    if (prompt_tokens is None) != (prompt_mask is None):
        raise ValueError("give prompt_tokens and prompt_mask together, or neither")
    if prompt_tokens is not None and (
        prompt_tokens.shape != prompt_mask.shape or prompt_tokens.shape[0] != len(samples)
    ):
        raise ValueError("prompt_tokens and prompt_mask must both be (prompts, prompt length)")
    if group_size < 1 or not (tokens.shape == logps.shape == mask.shape) or tokens.dim() != 2:
        raise ValueError("tokens, logps and mask must share one (responses, tokens) shape")
    if tokens.shape[0] != rows or len(answers) != rows:
        raise ValueError(
            f"{len(samples)} prompts x {group_size} responses = {rows} rows, but got "
            f"{tokens.shape[0]} token rows and {len(answers)} answers"
        )
    entries, media = [], {}
    for index, answer in enumerate(answers):
        entry, files = _encode(index, answer)
        entries.append(entry)
        media.update(files)
    record = {
        "policy": policy,
        "group_size": group_size,
        "samples": list(samples),
        "answers": entries,
    }
    if messages is not None and any(messages):
        if len(messages) != len(samples):
            raise ValueError(f"{len(messages)} prompt chats for {len(samples)} prompts")
        record["messages"] = list(messages)
    tensors = {"tokens": tokens.long(), "logps": logps.float(), "mask": mask.float()}
    if prompt_tokens is not None:
        tensors.update(prompt_tokens=prompt_tokens.long(), prompt_mask=prompt_mask.float())
    store.write("rollouts", key, record, tensors, media)
    return store.read("rollouts", key)


def load_answer(rollout: Snapshot, index: int) -> Any:
    """Response ``index`` decoded: str, PIL image or (wave, sample_rate)."""
    entry = rollout.record["answers"][index]
    if "text" in entry:
        return entry["text"]
    if "image" in entry:
        with Image.open(rollout.folder / entry["image"]) as image:
            return image.convert("RGB")
    wave, sample_rate = soundfile.read(rollout.folder / entry["audio"], dtype="float32")
    return wave, sample_rate
