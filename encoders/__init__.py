"""Continuous understanding paths: vision (open_clip ViT, or the Qwen2.5-VL vision transformer),
audio (Whisper's encoder, or Qwen2-Audio's) and video.

Each encoder maps a raw signal to ``[num_tokens, out_dim]`` embeddings for the backbone's
continuous slots; ``build_encoder(encoder.to_config())`` rebuilds it.
"""

from __future__ import annotations

from typing import Any

from encoders.audio import AudioEncoder, AudioFeatures, log_mel
from encoders.base import ContinuousEncoder
from encoders.qwen_audio import QwenAudioEncoder
from encoders.qwen_vision import QwenImage, QwenVisionEncoder
from encoders.video import VideoClip, VideoEncoder
from encoders.vision import VisionEncoder
from omni.common.registry import REGISTRY, resolve

__all__ = [
    "AudioEncoder",
    "AudioFeatures",
    "ContinuousEncoder",
    "QwenAudioEncoder",
    "QwenImage",
    "QwenVisionEncoder",
    "VideoClip",
    "VideoEncoder",
    "VisionEncoder",
    "build_encoder",
    "log_mel",
]


def build_encoder(config: dict[str, Any]) -> ContinuousEncoder:
    """Build an encoder from a config dict whose ``type`` is one of the registered kinds
    (``vision``, ``audio``, ``video``, ``qwen2_5_vl_vision``, ``qwen2_audio``)."""
    kind = config.get("type")
    if kind not in REGISTRY["encoder"]:
        raise ValueError(
            f"encoder config needs 'type' in {sorted(REGISTRY['encoder'])}, got {kind!r}"
        )
    return resolve("encoder", kind).from_config(config)
