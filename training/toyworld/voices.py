"""Who speaks a clip and how it sounds: a voice and its effects, drawn per clip.

``sample_voice`` picks a voice within a ``SpeakingStyle`` (a fixed list in the classic world,
else an espeak-ng variant with a drawn pitch and speed); ``sample_effects`` draws gain, noise,
reverb and silence, which ``apply_effects`` puts on the clean espeak-ng rendering with
torchaudio (the renderer's cache keeps only clean renderings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.toyworld.speech import SAMPLE_RATE, Voice
from training.toyworld.styles import SpeakingStyle

REVERB_SECONDS = (0.15, 0.35)  # RT60 of the light synthetic room
REVERB_WET = 0.25  # share of the reverberant signal in the mix


def _from_intervals(rng: np.random.Generator, intervals: tuple[tuple[int, int], ...]) -> int:
    low, high = intervals[int(rng.integers(len(intervals)))]
    return int(rng.integers(low, high + 1))


def sample_voice(rng: np.random.Generator, lang: str, speaking: SpeakingStyle) -> Voice:
    """A voice of ``lang`` within the speaking style's ranges."""
    if speaking.voices is not None:
        voices = speaking.fixed_voices(lang)
        return voices[int(rng.integers(len(voices)))]
    variant = str(speaking.variants[int(rng.integers(len(speaking.variants)))])
    return Voice(
        lang, variant, _from_intervals(rng, speaking.pitch), _from_intervals(rng, speaking.speed)
    )


@dataclass(frozen=True)
class SpeechEffects:
    """What happens to one clean clip: gain, additive noise (None: clean), reverb, silence."""

    gain_db: float
    snr_db: float | None
    reverb: bool
    lead_s: float
    trail_s: float
    seed: int


def sample_effects(rng: np.random.Generator, speaking: SpeakingStyle) -> SpeechEffects | None:
    """The effects of one clip, or None where the style adds none (the classic world)."""
    if speaking.voices is not None:
        return None
    gain = float(rng.uniform(-speaking.gain_db, speaking.gain_db))
    snr = None if speaking.snr_db is None else float(rng.uniform(*speaking.snr_db))
    reverb = bool(rng.random() < speaking.reverb_share)
    lead, trail = (float(v) for v in rng.uniform(*speaking.silence_s, size=2))
    return SpeechEffects(gain, snr, reverb, lead, trail, int(rng.integers(2**31)))


def _room_response(rng: np.random.Generator) -> np.ndarray:
    # A synthetic room: exponentially decaying noise (no room simulator among the
    # dependencies); the direct path stays the strongest tap.
    rt60 = rng.uniform(*REVERB_SECONDS)
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    tail *= REVERB_WET / np.sqrt((tail**2).sum())
    tail[0] = 1.0
    return tail.astype(np.float32)


def apply_effects(wave: np.ndarray, effects: SpeechEffects | None) -> np.ndarray:
    """The clip with silence, reverb, noise at the SNR and gain applied (float32 in [-1, 1])."""
    if effects is None:
        return wave
    import torch
    import torchaudio.functional as F

    rng = np.random.default_rng(effects.seed)
    lead, trail = (int(s * SAMPLE_RATE) for s in (effects.lead_s, effects.trail_s))
    signal = torch.from_numpy(np.pad(wave, (lead, trail)).astype(np.float32))[None]
    if effects.reverb:
        room = torch.from_numpy(_room_response(rng))[None]
        signal = F.fftconvolve(signal, room)[:, : signal.shape[1]]
    if effects.snr_db is not None:
        noise = torch.from_numpy(rng.standard_normal(signal.shape).astype(np.float32))
        signal = F.add_noise(signal, noise, torch.tensor([effects.snr_db]))
    signal = F.gain(signal, effects.gain_db)
    return signal[0].clamp(-1, 1).numpy()
