"""Samples: a list of turns, each a role plus segments of text, image, audio, video or tools.

This is the one sample format of the project: manifests on disk (JSONL, see the README), the
processor, the trainer and ``omni.generate`` all speak it. Media stay as references (paths,
PIL images, waveforms) until the processor needs them. A sample may name ``tools`` (JSON-schema
functions, ``omni.tools``); assistant turns then hold ``ToolCall`` segments and ``tool`` turns
hold the ``ToolResult`` of each call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from omni.vocab import ROLES

MODES = ("continuous", "discrete", "both")
CHAT_ROLES = (*ROLES, "tool")  # a tool turn has no role token of its own (omni.tools)


def _check_mode(mode: str | None) -> None:
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown segment mode {mode!r}; expected one of {MODES}")


@dataclass
class Text:
    """Plain text."""

    text: str


@dataclass
class Image:
    """An image: a path, PIL image, bytes or array in ``source``, and/or precomputed ``codes``.

    ``mode`` says how it enters the sequence: ``continuous`` (encoder embeddings, for
    understanding), ``discrete`` (image codes, a generation target) or ``both``; ``None``
    means continuous in user/system turns and discrete in assistant turns.
    """

    source: Any = None
    codes: torch.Tensor | None = None
    ratio: str = "1:1"
    mode: str | None = None

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        if self.source is None and self.codes is None:
            raise ValueError("an Image segment needs a source (path, PIL image, bytes) or codes")


@dataclass
class Audio:
    """A clip: a path or ``(sample_rate, waveform)`` in ``source``, and/or precomputed ``codes``."""

    source: Any = None
    codes: torch.Tensor | None = None
    text: str | None = None
    voice: str | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        if self.source is None and self.codes is None:
            raise ValueError("an Audio segment needs a source (path, (rate, waveform)) or codes")


@dataclass
class Video:
    """A video file path or a list of frames; always enters as continuous embeddings.

    Frames are sampled at the video encoder's configured rate and frame cap.
    """

    source: Any
    mode: str | None = "continuous"

    def __post_init__(self) -> None:
        if self.mode not in (None, "continuous"):
            raise ValueError("a Video segment can only be continuous (no video codes exist)")


@dataclass
class ToolCall:
    """An assistant's call of a tool: its name and JSON arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a ToolCall needs the tool's name")
        if not isinstance(self.arguments, dict):
            raise ValueError(f"the arguments of tool call {self.name!r} must be a dict")


@dataclass
class ToolResult:
    """What a tool returned (or the error it raised), as text, in a ``tool`` turn."""

    content: str
    name: str = ""


Segment = Text | Image | Audio | Video | ToolCall | ToolResult
SEGMENT_TYPES = {
    "text": Text,
    "image": Image,
    "audio": Audio,
    "video": Video,
    "tool_call": ToolCall,
    "tool_result": ToolResult,
}


@dataclass
class Turn:
    """One turn of a conversation. ``loss`` overrides the processor's default for this turn."""

    role: str
    segments: list[Segment]
    think: str | None = None
    loss: bool | None = None

    def __post_init__(self) -> None:
        if self.role not in CHAT_ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {CHAT_ROLES}")
        for segment in self.segments:
            if not isinstance(segment, tuple(SEGMENT_TYPES.values())):
                raise ValueError(
                    f"unknown segment type {type(segment).__name__}; "
                    f"expected one of {sorted(SEGMENT_TYPES)}"
                )
        if self.think is not None and self.role != "assistant":
            raise ValueError("only assistant turns may carry a think block")
        results = [isinstance(s, ToolResult) for s in self.segments]
        if (self.role == "tool") != (bool(results) and all(results)):
            raise ValueError("a tool turn holds ToolResult segments, and only a tool turn does")
        if self.role != "assistant" and any(isinstance(s, ToolCall) for s in self.segments):
            raise ValueError("only assistant turns may hold tool calls")


@dataclass
class Sample:
    """A conversation: turns plus bookkeeping (id, task name, free-form metadata), and the
    JSON-schema ``tools`` its assistant may call."""

    turns: list[Turn]
    id: str = ""
    task: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: str | Path | None = None) -> Sample:
        """Read the manifest form; relative media paths resolve against ``root``."""
        if "turns" not in data or not isinstance(data["turns"], list):
            raise ValueError("a sample needs a 'turns' list")
        turns = []
        for turn in data["turns"]:
            segments = [_segment_from_dict(s, root) for s in turn.get("segments", [])]
            turns.append(Turn(turn.get("role", ""), segments, turn.get("think"), turn.get("loss")))
        tools = data.get("tools", [])
        return cls(turns, data.get("id", ""), data.get("task", ""), data.get("meta", {}), tools)

    def to_dict(self) -> dict[str, Any]:
        """The manifest form (media must be paths or codes to be serialisable)."""
        turns = []
        for turn in self.turns:
            entry: dict[str, Any] = {
                "role": turn.role,
                "segments": [_segment_to_dict(s) for s in turn.segments],
            }
            if turn.think is not None:
                entry["think"] = turn.think
            if turn.loss is not None:
                entry["loss"] = turn.loss
            turns.append(entry)
        entry = {"id": self.id, "task": self.task, "turns": turns, "meta": self.meta}
        return {**entry, "tools": self.tools} if self.tools else entry


def _resolve(path: str | None, root: str | Path | None) -> str | None:
    if path is None or root is None or Path(path).is_absolute():
        return path
    return str(Path(root) / path)


def _segment_from_dict(data: dict[str, Any], root: str | Path | None) -> Segment:
    kind = data.get("type")
    if kind not in SEGMENT_TYPES:
        raise ValueError(f"unknown segment type {kind!r}; expected one of {sorted(SEGMENT_TYPES)}")
    codes = torch.tensor(data["codes"]) if "codes" in data else None
    if kind == "text":
        return Text(data.get("text", ""))
    if kind == "tool_call":
        return ToolCall(data.get("name", ""), data.get("arguments", {}))
    if kind == "tool_result":
        return ToolResult(str(data.get("content", "")), data.get("name", ""))
    if kind == "image":
        source = _resolve(data.get("path"), root)
        return Image(source, codes, data.get("ratio", "1:1"), data.get("mode"))
    if kind == "audio":
        source = _resolve(data.get("path"), root)
        return Audio(source, codes, data.get("text"), data.get("voice"), data.get("mode"))
    frames = data.get("frames")
    source = [_resolve(f, root) for f in frames] if frames else _resolve(data.get("path"), root)
    return Video(source)


def _segment_to_dict(segment: Segment) -> dict[str, Any]:
    if isinstance(segment, Text):
        return {"type": "text", "text": segment.text}
    if isinstance(segment, ToolCall):
        return {"type": "tool_call", "name": segment.name, "arguments": segment.arguments}
    if isinstance(segment, ToolResult):
        return {"type": "tool_result", "content": segment.content, "name": segment.name}
    kind = type(segment).__name__.lower()
    entry: dict[str, Any] = {"type": kind}
    if isinstance(segment.source, (str, Path)):
        entry["path"] = str(segment.source)
    elif isinstance(segment, Video) and isinstance(segment.source, list):
        entry["frames"] = [str(f) for f in segment.source]
    codes = getattr(segment, "codes", None)
    if codes is not None:
        entry["codes"] = torch.as_tensor(codes).tolist()
    for name in ("ratio", "text", "voice"):
        value = getattr(segment, name, None)
        if value is not None and not (name == "ratio" and value == "1:1"):
            entry[name] = value
    if segment.mode is not None and not isinstance(segment, Video):
        entry["mode"] = segment.mode
    return entry
