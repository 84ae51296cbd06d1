"""What users hand to ``omni.generate`` -> one ``Sample``.

Accepted: a string, a PIL image, a ``(sample_rate, array)`` pair, a numpy/torch waveform with
``sample_rate=``, raw bytes of an image / audio / video file, ``Image`` / ``Audio`` / ``Video``
segments, a list of these (one user turn), or a chat: a list of ``{"role": ..., "content": ...}``
messages whose content is any of the above.

When a string is a file: only when it names an existing file (its kind is read from its
content). A ``Path`` and the ``source`` of an explicit ``Image`` / ``Audio`` / ``Video`` always
mean a file (missing: an error naming it). A string that can only be a path but names no file
is an error naming it: one token (no whitespace) ending in a media suffix (``cat.png``,
``clip.mp4``), or one holding a ``/`` that names a folder or lies in an existing folder
(``photos/cat``). Any other string is text: ``"I/O is slow. Why?"``, ``"and/or"``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from omni.common.audio import read_audio
from omni.sequence import (
    CHAT_ROLES,
    Audio,
    Image,
    Sample,
    Segment,
    Text,
    ToolCall,
    ToolResult,
    Turn,
    Video,
)

__all__ = ["read_audio", "segment_from_bytes", "segment_from_file", "to_sample", "to_segment"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
MEDIA_SUFFIXES = IMAGE_SUFFIXES | AUDIO_SUFFIXES | VIDEO_SUFFIXES


_CORRUPT = (UnidentifiedImageError, OSError, SyntaxError, ValueError)  # what PIL raises


def _open_image(source: Any, name: str) -> PILImage.Image:
    """Decode an image file or bytes. A decompression bomb is refused from its header, before
    any pixel is decoded: over ``PIL.Image.MAX_IMAGE_PIXELS`` (PIL only warns up to twice that
    and raises its own error beyond)."""
    try:
        image = PILImage.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except PILImage.DecompressionBombError as error:
        raise ValueError(f"{name} is too large to read: {error}") from error
    except _CORRUPT as error:
        raise ValueError(f"cannot read {name} as an image: {error}") from error
    limit, pixels = PILImage.MAX_IMAGE_PIXELS, image.width * image.height
    if limit and pixels > limit:
        raise ValueError(
            f"{name} is too large to read: {image.width}x{image.height} = {pixels} pixels, "
            f"over the limit of {limit} pixels"
        )
    try:
        image.load()
    except _CORRUPT as error:
        raise ValueError(f"cannot read {name} as an image: {error}") from error
    return image


def _sniff(data: bytes) -> str | None:
    """The media kind of a file from its first bytes (magic numbers)."""
    riff = data[:4] == b"RIFF"
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"BM")):
        return "image"
    if riff and data[8:12] == b"WEBP":
        return "image"
    if riff and data[8:12] == b"WAVE" or data.startswith((b"fLaC", b"OggS", b"ID3")):
        return "audio"
    if data.startswith((b"\xff\xfb", b"\xff\xf3")):
        return "audio"
    if (
        data[4:8] == b"ftyp"
        or data.startswith(b"\x1a\x45\xdf\xa3")
        or riff
        and data[8:12] == b"AVI "
    ):
        return "video"
    return None


_UNSUPPORTED = "(PNG, JPEG, GIF, WebP, BMP, WAV, FLAC, OGG, MP3, MP4, WebM, MKV, AVI)"


def segment_from_file(path: Path) -> Segment:
    """An image, audio or video segment for an existing file, by its content."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise ValueError(f"cannot read file {path}: {error}") from error
    kind = _sniff(head)
    if kind == "image":
        return Image(_open_image(path, str(path)).copy())
    if kind == "audio":
        return Audio(read_audio(path))
    if kind == "video" or (kind is None and head and path.suffix.lower() in VIDEO_SUFFIXES):
        return Video(str(path))
    raise ValueError(
        f"unsupported file type: {path} is not an image, audio or video file {_UNSUPPORTED}"
    )


def segment_from_bytes(data: bytes) -> Segment:
    """An image, audio or video segment for the bytes of a file, by their content."""
    kind = _sniff(data[:16])
    if kind == "image":
        return Image(_open_image(data, "the image bytes").copy())
    if kind == "audio":
        return Audio(read_audio(data))
    if kind == "video":
        return Video(data)
    raise ValueError(f"unsupported bytes: not an image, audio or video file {_UNSUPPORTED}")


def to_segment(item: Any, sample_rate: int | None = None) -> Segment:
    """One user-supplied item -> one segment."""
    if isinstance(item, Text):
        return item
    if isinstance(item, (Image, Audio, Video)):
        return _loaded(item)
    if isinstance(item, PILImage.Image):
        return Image(item)
    if isinstance(item, Path):
        return segment_from_file(_existing_file(item))
    if isinstance(item, str):
        return _from_string(item)
    if isinstance(item, (bytes, bytearray)):
        return segment_from_bytes(bytes(item))
    if isinstance(item, tuple) and len(item) == 2:
        return Audio(read_audio(item))
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return Audio(read_audio(item, sample_rate))
    raise ValueError(
        f"unsupported input of type {type(item).__name__}: give text, a PIL image, a file "
        f"path, a (sample_rate, array) pair or a waveform with sample_rate="
    )


def _from_string(text: str) -> Segment:
    path = _candidate_path(text)
    if path is None:
        return Text(text)
    kind = _path_kind(path)
    if kind == "file":
        return segment_from_file(path)
    if kind == "folder" and _has_separator(text):
        raise ValueError(f"{text} is a folder; give a media file")
    if path.suffix.lower() in MEDIA_SUFFIXES or _has_separator(text) and _in_a_folder(path):
        raise ValueError(f"no such file: {text}")
    return Text(text)


def _candidate_path(text: str) -> Path | None:
    """The path ``text`` may name: one token (no whitespace) of sane length, else ``None``."""
    if not text or len(text) > 4096 or "\0" in text or text.split() != [text]:
        return None
    return Path(text)


def _has_separator(text: str) -> bool:
    return "/" in text or os.sep in text


def _in_a_folder(path: Path) -> bool:
    """Whether ``path`` lies in an existing folder other than ``.`` and the root: then a
    one-token string such as ``photos/cat`` or ``/tmp/clip`` names a file, while ``I/O`` or
    ``and/or`` (no folder ``I`` or ``and``) stays text."""
    parent = path.parent
    return parent not in (Path("."), Path(parent.anchor)) and _path_kind(parent) == "folder"


def _path_kind(path: Path) -> str | None:
    """``"file"``, ``"folder"``, ``"other"`` (a device, a socket) or ``None`` (nothing there,
    or a name no file system can hold)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def _existing_file(source: str | Path) -> Path:
    """``source`` as the path of an existing file, else a ``ValueError`` naming it."""
    path = Path(source)
    kind = _path_kind(path)
    if kind == "folder":
        raise ValueError(f"{path} is a folder; give a media file")
    if kind is None:
        raise ValueError(f"no such file: {path}")
    if kind == "other":
        raise ValueError(f"{path} is not a regular file; give a media file")
    return path


def _loaded(segment: Image | Audio | Video) -> Segment:
    """An explicit segment with its file or bytes read and checked now, before any model
    work (a ``Video`` keeps its path or bytes once the file is known to exist: the video
    encoder decodes it)."""
    source = segment.source
    if isinstance(source, (str, Path)):
        source = _existing_file(source)
        if isinstance(segment, Video):
            return segment
    if isinstance(segment, Image) and isinstance(source, (Path, bytes)):
        name = str(source) if isinstance(source, Path) else "the image bytes"
        return dataclasses.replace(segment, source=_open_image(source, name).copy())
    if isinstance(segment, Audio) and source is not None:
        return dataclasses.replace(segment, source=read_audio(source))
    return segment


def to_sample(inputs: Any, sample_rate: int | None = None, system: str | None = None) -> Sample:
    """Normalise any accepted ``inputs`` into a conversation ending with a user turn."""
    if isinstance(inputs, Sample):
        return inputs
    if _is_chat(inputs):
        turns = [_turn(message, sample_rate) for message in inputs]
    else:
        items = inputs if isinstance(inputs, list) else [inputs]
        if not items:
            raise ValueError("no inputs given")
        turns = [Turn("user", [to_segment(item, sample_rate) for item in items])]
    if system is not None and turns[0].role != "system":
        turns.insert(0, Turn("system", [Text(system)]))
    return Sample(turns)


def _is_chat(inputs: Any) -> bool:
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(m, dict) and "role" in m for m in inputs)
    )


def _turn(message: dict[str, Any], sample_rate: int | None) -> Turn:
    """One chat message -> one turn; a ``tool`` message's content is its result, and an
    assistant's ``tool_calls`` (transformers' form) follow its content."""
    role = message["role"]
    if role not in CHAT_ROLES:
        raise ValueError(f"unknown role {role!r} in a chat message; expected one of {CHAT_ROLES}")
    content = message.get("content") or ""
    if role == "tool":
        if isinstance(content, list):
            content = "".join(item.get("text", "") for item in content if isinstance(item, dict))
        return Turn(role, [ToolResult(str(content), message.get("name", ""))])
    calls = message.get("tool_calls") or []
    items = content if isinstance(content, list) else [content]
    segments = [to_segment(item, sample_rate) for item in items if item != "" or not calls]
    for call in calls:
        function = call.get("function", call)
        segments.append(ToolCall(function.get("name", ""), function.get("arguments", {})))
    return Turn(role, segments)
