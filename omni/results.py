"""What generation hands back: a whole answer, or the pieces of a streamed one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image as PILImage


@dataclass
class GenerationResult:
    """One answer: its text, reasoning, image and audio (any may be empty), ids and figures.

    ``text`` is the answer only; with ``think=True`` the reasoning before ``</think>`` is in
    ``thinking``. With ``tools=`` the tool calls are parsed out of the text into ``tool_calls``
    (``omni.tools.ParsedToolCall``, each checked against its schema; a malformed one says why
    in its ``error``)."""

    text: str = ""
    image: PILImage.Image | None = None
    audio: tuple[int, np.ndarray] | None = None
    tokens: list[int] = field(default_factory=list)
    images: list[PILImage.Image] = field(default_factory=list)
    audios: list[tuple[int, np.ndarray]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    thinking: str = ""
    tool_calls: list[Any] = field(default_factory=list)


@dataclass
class StreamEvent:
    """A piece of a streamed answer: ``text`` pieces, ``audio`` chunks, an ``image``, ``done``."""

    kind: str
    text: str = ""
    audio: tuple[int, np.ndarray] | None = None
    image: PILImage.Image | None = None
    result: GenerationResult | None = None
