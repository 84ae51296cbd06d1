"""Codes back to signals: every decoder answers ``decode(codes, **conditioning)``.

- ``ImageDecoder`` (``vision``): semantic image codes ``[rows, cols]`` -> ``PIL.Image`` by a
  few-step, classifier-free-guided flow-matching diffusion model (``ratio=``, ``steps=``,
  ``guidance=``, ``seed=``).
- ``UnitVocoder`` (``audio``): speech units ``[frames]`` -> ``(sample_rate, waveform)`` through
  a Unit-BigVGAN conditioned on a voice (``speaker=`` a name, an embedding or a
  ``(sample_rate, wave)`` reference clip); ``stream`` synthesises chunk by chunk.
- ``EncodecDecoder`` (``encodec``): EnCodec codes ``[codebooks, frames]`` -> 24 kHz audio.
- ``load_decoder(folder)`` rebuilds any of them from ``save_pretrained`` output.

Names are resolved lazily so that ``import decoders`` stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

_EXPORTS = {
    "CodeDecoder": "decoders.base",
    "ImageDecoder": "decoders.vision",
    "ImageDecoderConfig": "decoders.vision",
    "image_shape": "decoders.vision",
    "RATIOS": "decoders.vision",
    "UnitVocoder": "decoders.audio",
    "VocoderConfig": "decoders.audio",
    "SpeakerEncoderConfig": "decoders.audio",
    "EncodecDecoder": "decoders.encodec",
}
__all__ = sorted([*_EXPORTS, "load_decoder"])


def load_decoder(folder: str | Path) -> Any:
    """Rebuild whichever decoder ``folder`` holds (by the ``kind`` in its config.json)."""
    from decoders.base import CodeDecoder

    return CodeDecoder.from_pretrained(folder)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'decoders' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
