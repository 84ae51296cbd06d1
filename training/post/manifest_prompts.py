"""Prompts for the generate stage from a toy-world (or any Omni) manifest.

Each sample of the chosen task and split becomes the chat before its last assistant turn, in
transformers' message format with media as file paths (``omni_policy`` renders and samples
it), the sample's ``meta`` (what the rewards check) and the modality its answer has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omni.sequence import Audio, Image, Text, Video
from training.data import Manifest

_KINDS = {Image: "image", Audio: "audio", Video: "video"}


def _content(segments: list[Any]) -> list[dict[str, Any]]:
    content = []
    for segment in segments:
        if isinstance(segment, Text):
            content.append({"type": "text", "text": segment.text})
        elif type(segment) in _KINDS and isinstance(segment.source, str):
            kind = _KINDS[type(segment)]
            content.append({"type": kind, kind: segment.source})
        else:
            raise ValueError(f"a prompt segment {type(segment).__name__} has no file path")
    return content


def _answer_modality(segments: list[Any]) -> str:
    kinds = {_KINDS.get(type(s), "text") for s in segments}
    if len(kinds) != 1 or "video" in kinds:
        raise ValueError(f"an answer must be one text, image or audio segment, not {kinds}")
    return kinds.pop()


def manifest_chats(
    path: str | Path, task: str, split: str, limit: int | None = None
) -> tuple[list[tuple[list[dict[str, Any]], dict[str, Any]]], str]:
    """([(messages, meta)], answer modality) for ``task`` samples of ``split``."""
    manifest = Manifest(path, split=split, tasks=[task], on_error="raise")
    if not len(manifest):
        raise ValueError(f"{path} has no {task!r} samples in split {split!r}")
    chats, modalities = [], set()
    for record in manifest.records[:limit]:
        turns = record.sample.turns
        last = max(i for i, turn in enumerate(turns) if turn.role == "assistant")
        messages = [{"role": t.role, "content": _content(t.segments)} for t in turns[:last]]
        chats.append((messages, record.sample.meta))
        modalities.add(_answer_modality(turns[last].segments))
    if len(modalities) != 1:
        raise ValueError(f"{task!r} answers come in several modalities {sorted(modalities)}")
    return chats, modalities.pop()
