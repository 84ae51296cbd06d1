"""Continuous understanding paths: vision (open_clip ViT), audio (Whisper encoder) and video.

Each encoder maps a raw signal to ``[num_tokens, out_dim]`` embeddings for the backbone's
continuous slots; ``build_encoder(encoder.to_config())`` rebuilds it.
"""

from __future__ import annotations

import inspect
from typing import Any

from encoders.audio import AudioEncoder, AudioFeatures, log_mel
from encoders.base import ContinuousEncoder
from encoders.video import VideoClip, VideoEncoder
from encoders.vision import VisionEncoder

__all__ = [
    "AudioEncoder",
    "AudioFeatures",
    "ContinuousEncoder",
    "VideoClip",
    "VideoEncoder",
    "VisionEncoder",
    "build_encoder",
    "log_mel",
]

_ENCODERS: dict[str, type[ContinuousEncoder]] = {
    "vision": VisionEncoder,
    "audio": AudioEncoder,
    "video": VideoEncoder,
}


def build_encoder(config: dict[str, Any]) -> ContinuousEncoder:
    """Build an encoder from a config dict with a ``type`` of vision, audio or video."""
    kind = config.get("type")
    if kind not in _ENCODERS:
        raise ValueError(f"encoder config needs 'type' in {sorted(_ENCODERS)}, got {kind!r}")
    options = {key: value for key, value in config.items() if key != "type"}
    known = set(inspect.signature(_ENCODERS[kind]).parameters)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown {kind} encoder options {unknown}; known: {sorted(known)}")
    return _ENCODERS[kind](**options)
