"""Unit-BigVGAN: speech units plus a speaker embedding -> waveform, with streaming synthesis.

The generator is diffusers' BigVGAN-v2 implementation (``LTX2Vocoder``: Snake-beta
activations, anti-aliased multi-periodicity residual blocks, transposed-conv upsampling); we
feed it unit embeddings concatenated with a speaker embedding instead of a mel spectrogram, and
upsample from the unit rate (25 Hz) to the waveform rate (16 kHz at micro scale: 640x).

The voice is set either by name (a table of per-voice mean speaker embeddings) or zero-shot
from a reference clip through the speaker encoder, transformers' ECAPA-TDNN (the one Qwen2.5-
Omni's token2wav uses) over log-mel, trained with a speaker-classification loss. Both paths
give a vector in the same embedding space, so the generator never knows which one was used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from decoders.base import CodeDecoder, as_code_tensor
from omni.common.audio import resample, to_mono
from omni.common.mel import LogMel

Speaker = str | torch.Tensor | np.ndarray | tuple[int, Any]


@dataclass
class SpeakerEncoderConfig:
    """Shape of the speaker encoder; ``enc_channels[-1]`` must equal the sum of the middle ones
    (ECAPA's multi-layer feature aggregation concatenates the SE-Res2Net outputs)."""

    sample_rate: int = 16000
    n_mels: int = 64
    embedding_dim: int = 64
    channels: list[int] = field(default_factory=lambda: [64, 64, 64, 128])
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 3, 3, 1])
    dilations: list[int] = field(default_factory=lambda: [1, 2, 3, 1])
    attention_channels: int = 32
    res2net_scale: int = 2
    se_channels: int = 16
    num_speakers: int = 0


class SpeakerEncoder(nn.Module):
    """ECAPA-TDNN over log-mel -> unit-norm speaker embedding; a linear head classifies the
    training voices (the only training signal the encoder needs)."""

    def __init__(self, config: SpeakerEncoderConfig) -> None:
        super().__init__()
        from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import (
            Qwen2_5OmniDiTConfig,
        )
        from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import ECAPA_TimeDelayNet

        self.config = config
        self.frontend = LogMel(config.sample_rate, config.n_mels)
        ecapa_config = Qwen2_5OmniDiTConfig(
            mel_dim=config.n_mels,
            enc_dim=config.embedding_dim,
            enc_channels=list(config.channels),
            enc_kernel_sizes=list(config.kernel_sizes),
            enc_dilations=list(config.dilations),
            enc_attention_channels=config.attention_channels,
            enc_res2net_scale=config.res2net_scale,
            enc_se_channels=config.se_channels,
        )
        self.ecapa = ECAPA_TimeDelayNet(ecapa_config)
        self.classifier = nn.Linear(config.embedding_dim, max(config.num_speakers, 1))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, samples]`` at ``sample_rate`` -> ``[B, embedding_dim]`` unit-norm embeddings."""
        mel = self.frontend(wave)
        mel = mel - mel.mean(dim=-1, keepdim=True)  # cepstral mean norm: channel, not voice
        return F.normalize(self.ecapa(mel.transpose(1, 2)), dim=-1)


@dataclass
class VocoderConfig:
    """Shape of the Unit-BigVGAN. ``prod(upsample_factors)`` must be
    ``sample_rate / unit_rate``; each kernel is ``2 * factor`` or ``3 * factor`` so the
    transposed convs upsample exactly."""

    num_units: int = 512
    unit_rate: int = 25
    sample_rate: int = 16000
    unit_dim: int = 64
    hidden_channels: int = 64
    upsample_factors: list[int] = field(default_factory=lambda: [8, 8, 5, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 15, 4])
    resnet_kernel_sizes: list[int] = field(default_factory=lambda: [3])
    resnet_dilations: list[list[int]] = field(default_factory=lambda: [[1, 3]])
    speakers: list[str] = field(default_factory=list)
    speaker_encoder: SpeakerEncoderConfig = field(default_factory=SpeakerEncoderConfig)
    # Units of context on each side of a streamed chunk; must cover the generator's receptive
    # field (checked by tests/test_vocoder.py) so chunked output equals whole-utterance output.
    stream_context: int = 12

    def __post_init__(self) -> None:
        if isinstance(self.speaker_encoder, dict):
            self.speaker_encoder = SpeakerEncoderConfig(**self.speaker_encoder)
        if self.sample_rate % self.unit_rate:
            raise ValueError(
                f"sample_rate {self.sample_rate} is not a multiple of unit_rate {self.unit_rate}"
            )
        if math.prod(self.upsample_factors) != self.hop_length:
            raise ValueError(
                f"upsample_factors {self.upsample_factors} multiply to "
                f"{math.prod(self.upsample_factors)}, need {self.hop_length} "
                f"(= {self.sample_rate} / {self.unit_rate})"
            )
        if self.speaker_encoder.sample_rate != self.sample_rate:
            raise ValueError("speaker_encoder.sample_rate must equal the vocoder's sample_rate")

    @property
    def hop_length(self) -> int:
        """Waveform samples per unit."""
        return self.sample_rate // self.unit_rate


class UnitVocoder(CodeDecoder):
    """Speech units ``[frames]`` + a voice -> ``(sample_rate, waveform)``."""

    kind = "unit_bigvgan"

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

        self.config = config
        speaker_dim = config.speaker_encoder.embedding_dim
        self.unit_embedding = nn.Embedding(config.num_units, config.unit_dim)
        self.generator = LTX2Vocoder(
            in_channels=config.unit_dim + speaker_dim,
            hidden_channels=config.hidden_channels,
            out_channels=1,
            upsample_kernel_sizes=list(config.upsample_kernel_sizes),
            upsample_factors=list(config.upsample_factors),
            resnet_kernel_sizes=list(config.resnet_kernel_sizes),
            resnet_dilations=[list(d) for d in config.resnet_dilations],
            act_fn="snakebeta",
            antialias=True,
            final_act_fn="tanh",
            output_sampling_rate=config.sample_rate,
        )
        self.speaker_encoder = SpeakerEncoder(config.speaker_encoder)
        self.register_buffer("speaker_table", torch.zeros(len(config.speakers), speaker_dim))

    # -- configuration ------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UnitVocoder:
        return cls(VocoderConfig(**config))

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    # -- the network --------------------------------------------------------------------------
    def forward(self, units: torch.Tensor, speaker_embedding: torch.Tensor) -> torch.Tensor:
        """``units [B, T]``, ``speaker_embedding [B, D]`` -> waveform ``[B, T * hop_length]``."""
        features = self.unit_embedding(units)
        voice = speaker_embedding.to(features.device, features.dtype)[:, None, :]
        voice = voice.expand(-1, units.shape[1], -1)
        features = torch.cat([features, voice], dim=-1).transpose(1, 2)
        return self.generator(features.unsqueeze(1), time_last=True).squeeze(1)

    def set_speaker_table(self, names: list[str], embeddings: torch.Tensor) -> None:
        """Replace the named voices (e.g. per-voice means of speaker-encoder embeddings)."""
        if len(names) != embeddings.shape[0]:
            raise ValueError(f"{len(names)} names for {embeddings.shape[0]} embeddings")
        self.config.speakers = list(names)
        self.speaker_table = F.normalize(embeddings.detach().float(), dim=-1).clone()

    @torch.no_grad()
    def embed_speaker(self, wave: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor:
        """Zero-shot voice: a reference clip -> ``[D]`` speaker embedding."""
        wave = to_mono(wave, "the reference clip")
        if wave.numel() < sample_rate // 10:
            raise ValueError(f"reference clip too short: {wave.numel()} samples (< 0.1 s)")
        wave = resample(wave, sample_rate, self.sample_rate)
        weight = self.unit_embedding.weight  # the clip goes where the vocoder lives
        return self.speaker_encoder(wave[None].to(weight.device, weight.dtype))[0]

    def speaker_vector(self, speaker: Speaker | None) -> torch.Tensor:
        """Resolve a voice: a table name, a ``[D]`` embedding, or a ``(sample_rate, wave)``
        reference clip; ``None`` is the first named voice."""
        dim = self.config.speaker_encoder.embedding_dim
        if speaker is None:
            if not self.config.speakers:
                raise ValueError("no speaker given and this vocoder has no named voices")
            speaker = self.config.speakers[0]
        if isinstance(speaker, str):
            if speaker not in self.config.speakers:
                raise ValueError(
                    f"unknown speaker {speaker!r}; known voices: {', '.join(self.config.speakers)}"
                )
            return self.speaker_table[self.config.speakers.index(speaker)]
        if isinstance(speaker, tuple):
            sample_rate, wave = speaker
            return self.embed_speaker(wave, int(sample_rate))
        vector = torch.as_tensor(speaker, dtype=torch.float32)
        if vector.shape != (dim,):
            raise ValueError(
                f"speaker embedding must have shape ({dim},), got {tuple(vector.shape)}"
            )
        return vector

    def _units(self, units: Any) -> torch.Tensor:
        units = as_code_tensor(units, "speech units", self.config.num_units, ndim=1)
        return units.to(self.unit_embedding.weight.device)

    # -- synthesis ----------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, units: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Checked ``[T]`` units + ``[D]`` embedding -> ``[T * hop_length]`` waveform tensor."""
        return self(units[None], speaker[None])[0]

    def decode(
        self, codes: Any, speaker: Speaker | None = None, **conditioning: Any
    ) -> tuple[int, np.ndarray]:
        """Units ``[frames]`` -> ``(sample_rate, float32 waveform)``; ``speaker`` is a voice
        name, an embedding or a ``(sample_rate, wave)`` reference clip."""
        if conditioning:
            raise ValueError(f"unknown vocoder options: {', '.join(conditioning)}")
        units = self._units(codes)
        wave = self.synthesize(units, self.speaker_vector(speaker))
        return self.sample_rate, wave.float().cpu().numpy()

    @torch.no_grad()
    def stream(
        self,
        unit_chunks: Iterable[Any],
        speaker: Speaker | None = None,
        first_units: int = 4,
        max_units: int = 64,
    ) -> Iterator[np.ndarray]:
        """Synthesise while units arrive: once at least ``first_units`` units have a complete
        receptive field (all but the last ``stream_context`` units), yield their audio; each
        later piece waits for twice as many as the one before, up to ``max_units``; the rest
        comes when the input ends. Concatenated, the pieces equal ``decode`` of all units,
        because each window carries ``stream_context`` units of context on both sides and only
        its centre is kept.

        Each window costs its context too, so one unit at a time would synthesise
        ``2 * stream_context + 1`` units per unit; growing pieces keep the first audio early
        and the total close to one ``decode`` (a few times it at most)."""
        if first_units < 1 or max_units < first_units:
            raise ValueError(
                f"need 1 <= first_units <= max_units, got first_units={first_units}, "
                f"max_units={max_units}"
            )
        voice = self.speaker_vector(speaker)
        context, hop = self.config.stream_context, self.config.hop_length
        units = torch.zeros(0, dtype=torch.long, device=self.unit_embedding.weight.device)
        done, want = 0, first_units  # units whose audio has been yielded; the next piece's size
        for chunk in unit_chunks:
            chunk = torch.as_tensor(chunk).reshape(-1)
            if chunk.numel() == 0:
                continue
            units = torch.cat([units, self._units(chunk)])
            ready = units.numel() - context
            if ready - done >= want:
                yield self._window(units, done, ready, voice, hop).float().cpu().numpy()
                done, want = ready, min(2 * want, max_units)
        if units.numel() == 0:
            raise ValueError("speech units are empty; nothing to synthesise")
        if units.numel() > done:
            yield self._window(units, done, units.numel(), voice, hop).float().cpu().numpy()

    def _window(
        self, units: torch.Tensor, start: int, end: int, voice: torch.Tensor, hop: int
    ) -> torch.Tensor:
        """Audio of ``units[start:end]`` computed from a window with context on both sides."""
        context = self.config.stream_context
        left, right = max(0, start - context), min(units.numel(), end + context)
        wave = self.synthesize(units[left:right], voice)
        return wave[(start - left) * hop : (end - left) * hop]
