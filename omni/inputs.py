"""What users hand to ``omni.generate`` -> one ``Sample``.

Accepted: a string (text, or a path to an image / audio / video file, recognised by its
content), a PIL image, a ``(sample_rate, array)`` pair, a numpy/torch waveform with
``sample_rate=``, raw bytes of a file, a list of these (one user turn), or a chat: a list of
``{"role": ..., "content": ...}`` messages whose content is any of the above.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from omni.sequence import Audio, Image, Sample, Segment, Text, Turn, Video
from omni.vocab import ROLES

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


def read_audio(source: Any) -> tuple[np.ndarray, int]:
    """A path, file bytes or ``(sample_rate, array)`` -> ``(float32 samples, sample_rate)``."""
    if isinstance(source, tuple) and len(source) == 2:
        first, second = source
        rate, wave = (first, second) if np.isscalar(first) else (second, first)
        wave = np.asarray(wave.numpy() if isinstance(wave, torch.Tensor) else wave)
        return _check_wave(wave.astype(np.float32, copy=False), int(rate), "the audio array")
    name = str(source) if isinstance(source, (str, Path)) else "the audio bytes"
    data = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        wave, rate = soundfile.read(data, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise ValueError(f"cannot read audio from {name}: {error}") from error
    return _check_wave(wave, int(rate), name)


def _check_wave(wave: np.ndarray, rate: int, name: str) -> tuple[np.ndarray, int]:
    if rate <= 0:
        raise ValueError(f"{name} has an invalid sample rate {rate}")
    if wave.size == 0:
        raise ValueError(f"{name} is empty (0 seconds of audio)")
    if not np.isfinite(wave).all():
        raise ValueError(f"{name} contains NaN or infinite samples")
    if wave.ndim == 2:  # soundfile gives [frames, channels]; downmix
        wave = wave.mean(axis=1) if wave.shape[1] <= 8 else wave.mean(axis=0)
    return wave.astype(np.float32, copy=False), rate


def _open_image(source: Any, name: str) -> PILImage.Image:
    try:
        image = PILImage.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
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
    if data[4:8] == b"ftyp" or data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video"
    return None


def segment_from_file(path: Path) -> Segment:
    """An image, audio or video segment for a file, by its content."""
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
        f"unsupported file type: {path} is not an image, audio or video file "
        f"(PNG, JPEG, GIF, WebP, BMP, WAV, FLAC, OGG, MP3, MP4, MKV)"
    )


def to_segment(item: Any, sample_rate: int | None = None) -> Segment:
    """One user-supplied item -> one segment."""
    if isinstance(item, (Text, Image, Audio, Video)):
        return item
    if isinstance(item, PILImage.Image):
        return Image(item)
    if isinstance(item, Path) or isinstance(item, str) and _looks_like_path(item):
        path = Path(item)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return segment_from_file(path)
    if isinstance(item, str):
        return Text(item)
    if isinstance(item, bytes):
        kind = _sniff(item[:16])
        if kind == "image":
            return Image(_open_image(item, "the image bytes").copy())
        if kind == "audio":
            return Audio(read_audio(item))
        raise ValueError("unsupported bytes: not an image or audio file")
    if isinstance(item, tuple) and len(item) == 2:
        return Audio(read_audio(item))
    if isinstance(item, (np.ndarray, torch.Tensor)):
        if sample_rate is None:
            raise ValueError("a raw waveform needs sample_rate= (e.g. sample_rate=16000)")
        return Audio(read_audio((sample_rate, item)))
    raise ValueError(
        f"unsupported input of type {type(item).__name__}: give text, a PIL image, a file "
        f"path, a (sample_rate, array) pair or a waveform with sample_rate="
    )


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > 4096:
        return False
    path = Path(text)
    return path.suffix != "" and (path.is_file() or "/" in text or path.suffix.lower() in _SUFFIXES)


_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".wav", ".flac", ".ogg", ".mp3"}
_SUFFIXES |= VIDEO_SUFFIXES


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
    role = message["role"]
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} in a chat message; expected one of {ROLES}")
    content = message.get("content", "")
    items = content if isinstance(content, list) else [content]
    return Turn(role, [to_segment(item, sample_rate) for item in items])
