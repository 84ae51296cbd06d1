"""Speech for the toy world: espeak-ng renders text in a named voice as 16 kHz mono audio.

Voices are espeak-ng voice variants with a pitch and a speed. ``GENERATION_VOICES`` speak the
data set; ``REFERENCE_VOICES`` (different variants, male and female) are what the speech
checker compares against, so the checker is never judged on a voice it has heard.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
ESPEAK_SAMPLE_RATE = 22_050


class EspeakNotFoundError(RuntimeError):
    """espeak-ng is not installed."""


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language, variant (m1..m7, f1..f5), pitch 0-99, speed in words/min."""

    lang: str
    variant: str
    pitch: int
    speed: int

    @property
    def id(self) -> str:
        return f"{self.lang}+{self.variant}-p{self.pitch}-s{self.speed}"

    @property
    def gender(self) -> str:
        return "female" if self.variant.startswith("f") else "male"

    @classmethod
    def from_id(cls, voice_id: str) -> Voice:
        """Parse an id such as ``en+f2-p60-s150``."""
        try:
            name, pitch, speed = voice_id.split("-")
            lang, variant = name.split("+")
            return cls(lang, variant, int(pitch.removeprefix("p")), int(speed.removeprefix("s")))
        except ValueError as error:
            raise ValueError(
                f"bad voice id {voice_id!r}; expected LANG+VARIANT-pPITCH-sSPEED"
            ) from error


def _voices(lang: str, specs: list[tuple[str, int, int]]) -> list[Voice]:
    return [Voice(lang, variant, pitch, speed) for variant, pitch, speed in specs]


_GENERATION_SPECS = [("m3", 50, 160), ("f2", 60, 150), ("m7", 35, 175), ("f4", 70, 165)]
_REFERENCE_SPECS = [("m1", 45, 160), ("f1", 65, 160), ("m5", 55, 150), ("f5", 55, 170)]
GENERATION_VOICES: dict[str, list[Voice]] = {
    lang: _voices(lang, _GENERATION_SPECS) for lang in ("en", "ko")
}
REFERENCE_VOICES: dict[str, list[Voice]] = {
    lang: _voices(lang, _REFERENCE_SPECS) for lang in ("en", "ko")
}


def espeak_binary() -> str:
    """Path of espeak-ng, or a clear error saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakNotFoundError(
            "espeak-ng is not installed; the toy world speaks through it. "
            "Install it with `apt-get install espeak-ng`."
        )
    return path


class SpeechRenderer:
    """Renders (text, voice) to float32 audio at 16 kHz. The last ``cache_size`` renderings
    are kept in memory: answers and questions repeat a lot, and espeak-ng is deterministic."""

    def __init__(self, cache_size: int = 512) -> None:
        import torchaudio.transforms as T

        self._binary = espeak_binary()
        # One resampler for all renderings: building its sinc kernel costs more than using it.
        self._resample = T.Resample(ESPEAK_SAMPLE_RATE, SAMPLE_RATE)
        self._cache: OrderedDict[tuple[str, Voice], np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.espeak_seconds = 0.0  # time spent inside espeak-ng, for benchmarks

    def render(self, text: str, voice: Voice) -> np.ndarray:
        key = (text, voice)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = self._synthesise(text, voice)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return self._cache[key]

    def _synthesise(self, text: str, voice: Voice) -> np.ndarray:
        import torch

        from omni.common.audio import read_audio

        if not text.strip():
            raise ValueError("cannot speak an empty text")
        command = [self._binary, "-v", f"{voice.lang}+{voice.variant}", "-p", str(voice.pitch)]
        command += ["-s", str(voice.speed), "--stdout", "--", text]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, check=False)
        self.espeak_seconds += time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed for voice {voice.id}: {result.stderr.decode()}")
        wave, rate = read_audio(result.stdout)
        if rate != ESPEAK_SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng wrote {rate} Hz audio, expected {ESPEAK_SAMPLE_RATE}")
        with torch.no_grad():
            return self._resample(torch.from_numpy(wave)).numpy()

    def write(self, path: Path, text: str, voice: Voice) -> None:
        """Write the rendering as a 16-bit PCM WAV file."""
        import soundfile as sf

        sf.write(path, self.render(text, voice), SAMPLE_RATE, subtype="PCM_16")
