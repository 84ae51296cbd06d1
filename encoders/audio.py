"""Audio understanding path: Whisper log-mel (torchaudio), the transformers ``WhisperEncoder``,
and a projector that downsamples its 50 Hz frames to the sequence rate (25 or 12.5 Hz).

Audio of any length is cut into windows the encoder accepts (30 s for Whisper's 1500 source
positions); each window is zero-padded as Whisper was trained, and only the encoder frames
that cover real audio are kept, so the token count grows with duration, not with padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchaudio
from torch import nn
from transformers import WhisperConfig, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from encoders.base import ContinuousEncoder
from omni.common.audio import check_rate, read_audio, resample, to_mono

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop -> 100 mel frames per second
ENCODER_RATE_HZ = 50.0  # Whisper's conv stem halves the 100 Hz mel rate
MICRO_WHISPER = {
    "d_model": 64,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 128,
    "decoder_layers": 1,
    "decoder_attention_heads": 2,
    "decoder_ffn_dim": 128,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
}


def resample_to_16k(waveform: Any, sample_rate: int) -> torch.Tensor:
    """Mono, finite, 16 kHz ``[samples]`` from any waveform and sample rate."""
    return resample(to_mono(waveform), check_rate(sample_rate), SAMPLE_RATE)


def log_mel(waveform: Any, sample_rate: int, n_mels: int = 80) -> torch.Tensor:
    """Whisper's log-mel spectrogram ``[n_mels, samples_16k // 160]``.

    Same numbers as transformers' ``WhisperFeatureExtractor`` (centred STFT whose last frame is
    dropped, Slaney mel filters up to 8 kHz, log10 clamped at 1e-10, 8 decades of dynamic range
    below the maximum, then ``(x + 4) / 4``), computed with torchaudio.
    """
    signal = resample_to_16k(waveform, sample_rate)
    if signal.numel() <= N_FFT // 2:
        raise ValueError(
            f"audio too short: {signal.numel()} samples at 16 kHz, need more than {N_FFT // 2} "
            f"(about {1000 * (N_FFT // 2 + 1) / SAMPLE_RATE:.1f} ms)"
        )
    mel_spec = _mel_transform(n_mels)(signal)[:, :-1]
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


_MEL_TRANSFORMS: dict[int, torchaudio.transforms.MelSpectrogram] = {}


def _mel_transform(n_mels: int) -> torchaudio.transforms.MelSpectrogram:
    if n_mels not in _MEL_TRANSFORMS:
        _MEL_TRANSFORMS[n_mels] = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            f_min=0.0,
            f_max=8000.0,
            n_mels=n_mels,
            power=2.0,
            norm="slaney",
            mel_scale="slaney",
        )
    return _MEL_TRANSFORMS[n_mels]


@dataclass
class AudioFeatures:
    """One preprocessed clip: padded log-mel windows and how many mel frames of each are real."""

    mel: torch.Tensor  # [windows, n_mels, window_frames]
    real_frames: list[int]  # per window, mel frames (100 Hz) that cover real audio

    @property
    def encoder_frames(self) -> list[int]:
        """Per window, the 50 Hz encoder frames that cover real audio (stride-2 conv stem)."""
        return [math.ceil(frames / 2) for frames in self.real_frames]


def mel_windows(
    signal: Any, sample_rate: int | None, n_mels: int, window_frames: int
) -> AudioFeatures:
    """Any audio ``read_audio`` takes, cut into zero-padded log-mel windows of
    ``window_frames`` mel frames (the length a Whisper-style encoder accepts)."""
    samples = torch.from_numpy(read_audio(signal, sample_rate, target_rate=SAMPLE_RATE)[0])
    window_samples = window_frames * HOP_LENGTH
    windows, real_frames = [], []
    for start in range(0, samples.numel(), window_samples):
        chunk = samples[start : start + window_samples]
        if chunk.numel() < HOP_LENGTH and windows:
            break  # a tail shorter than one mel frame carries no frame
        padded = torch.nn.functional.pad(chunk, (0, window_samples - chunk.numel()))
        windows.append(log_mel(padded, SAMPLE_RATE, n_mels))
        real_frames.append(max(1, chunk.numel() // HOP_LENGTH))
    return AudioFeatures(mel=torch.stack(windows), real_frames=real_frames)


class AudioEncoder(ContinuousEncoder):
    """Whisper encoder + frame-stacking projector: ``[ceil(50 Hz frames / stack), out_dim]``.

    Args:
        whisper: a ``WhisperConfig`` as a dict (``None``: the micro config), ignored when
            ``pretrained`` is given.
        pretrained: a transformers Whisper folder (``WhisperModel`` / ``WhisperForConditional-
            Generation``); only its encoder is kept.
        out_dim: backbone width the projector maps to.
        rate_hz: tokens per second; must divide 50 (25 stacks 2 frames, 12.5 stacks 4).
    """

    modality = "audio"
    kind = "audio"

    def __init__(
        self,
        whisper: dict[str, Any] | None = None,
        pretrained: str | None = None,
        out_dim: int = 64,
        rate_hz: float = 25.0,
    ) -> None:
        super().__init__()
        stack = ENCODER_RATE_HZ / rate_hz if rate_hz > 0 else 0.0
        if stack < 1 or stack != int(stack):
            raise ValueError(f"rate_hz must be 50 Hz divided by a whole number, got {rate_hz}")
        self.rate_hz, self.stack, self.out_dim = float(rate_hz), int(stack), int(out_dim)
        self.pretrained = pretrained
        if pretrained is not None:
            if not Path(pretrained).is_dir():
                raise ValueError(f"pretrained Whisper folder not found: {pretrained}")
            self.encoder = WhisperModel.from_pretrained(pretrained).get_encoder()
        else:
            config = WhisperConfig.from_dict({**MICRO_WHISPER, **(whisper or {})})
            self.encoder = WhisperEncoder(config)
        width = self.encoder.config.d_model
        self.projector = nn.Sequential(
            nn.Linear(width * self.stack, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)
        )

    @property
    def n_mels(self) -> int:
        return self.encoder.config.num_mel_bins

    @property
    def window_frames(self) -> int:
        """Mel frames per encoder window (3000 = 30 s for Whisper)."""
        return 2 * self.encoder.config.max_source_positions

    def preprocess(self, signal: Any, sample_rate: int | None = None) -> AudioFeatures:
        """An audio file (path or bytes), a ``(waveform, rate)`` / ``(rate, waveform)`` pair, or a
        waveform with ``sample_rate``: read by ``omni.common.audio.read_audio``."""
        return mel_windows(signal, sample_rate, self.n_mels, self.window_frames)

    def num_tokens(self, item: AudioFeatures) -> int:
        return math.ceil(sum(item.encoder_frames) / self.stack)

    def hidden_states(self, item: AudioFeatures) -> torch.Tensor:
        """Encoder output ``[real 50 Hz frames, d_model]`` for one clip, padding dropped."""
        return self._encode([item])[0]

    def forward(self, items: list[AudioFeatures]) -> list[torch.Tensor]:
        return [self._project(frames) for frames in self._encode(items)]

    def _encode(self, items: list[AudioFeatures]) -> list[torch.Tensor]:
        """All windows of all items in one encoder batch; then each item's real frames."""
        param = next(self.parameters())
        mel = torch.cat([item.mel for item in items]).to(param.device, param.dtype)
        hidden = self.encoder(input_features=mel).last_hidden_state
        per_window = iter(hidden)
        return [
            torch.cat([next(per_window)[:frames] for frames in item.encoder_frames])
            for item in items
        ]

    def _project(self, frames: torch.Tensor) -> torch.Tensor:
        """Stack ``self.stack`` consecutive frames (zero-padding the last group), then the MLP."""
        pad = -frames.shape[0] % self.stack
        frames = torch.nn.functional.pad(frames, (0, 0, 0, pad))
        return self.projector(frames.reshape(-1, frames.shape[1] * self.stack))

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "audio",
            "whisper": self.encoder.config.to_dict(),
            "pretrained": self.pretrained,
            "out_dim": self.out_dim,
            "rate_hz": self.rate_hz,
        }
