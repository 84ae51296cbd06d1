"""Adversarial training losses of the Unit-BigVGAN (its mel L1 is ``omni.common.mel``): the
multi-period (HiFi-GAN) and multi-resolution (UnivNet / BigVGAN) discriminators with LSGAN and feature-matching losses.

Written by hand: diffusers, transformers and torchaudio ship BigVGAN *generators* (we use
diffusers' one) but no vocoder discriminators or GAN losses. Channel counts are micro.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

FeatureMaps = list[torch.Tensor]


def _score(
    convs: nn.ModuleList, out: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, FeatureMaps]:
    """Leaky-ReLU conv stack, then the scoring conv: (flat scores, every layer's feature map)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        features.append(x)
    x = out(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into ``[T / period, period]`` and scores it with 2-D convs, so each
    column sees samples one period apart (periodic structure of voiced speech)."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        self.period = period
        widths = (1, *channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.out = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        batch, length = wave.shape
        pad = (-length) % self.period
        x = F.pad(wave, (0, pad), mode="reflect").view(batch, 1, -1, self.period)
        return _score(self.convs, self.out, x)


class ResolutionDiscriminator(nn.Module):
    """Scores a linear magnitude spectrogram at one STFT resolution with 2-D convs."""

    def __init__(self, n_fft: int, hop: int, channels: int = 16) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
            ]
        )
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        x = spec.abs().unsqueeze(1).transpose(2, 3)  # [B, 1, frames, bins]
        return _score(self.convs, self.out, x)


class VocoderDiscriminator(nn.Module):
    """All sub-discriminators together: periods (2, 3, 5, 7, 11) and three STFT resolutions."""

    def __init__(
        self,
        periods: tuple[int, ...] = (2, 3, 5, 7, 11),
        resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (256, 64)),
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p) for p in periods]
            + [ResolutionDiscriminator(n, h) for n, h in resolutions]
        )

    def forward(self, wave: torch.Tensor) -> list[tuple[torch.Tensor, FeatureMaps]]:
        return [d(wave) for d in self.discriminators]


def discriminator_loss(
    real: list[tuple[torch.Tensor, FeatureMaps]], fake: list[tuple[torch.Tensor, FeatureMaps]]
) -> torch.Tensor:
    """LSGAN: real scores toward 1, generated toward 0."""
    return sum(((1 - r) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake))


def generator_adversarial_loss(fake: list[tuple[torch.Tensor, FeatureMaps]]) -> torch.Tensor:
    """LSGAN: generated scores toward 1."""
    return sum(((1 - f) ** 2).mean() for f, _ in fake)


def feature_matching_loss(
    real: list[tuple[torch.Tensor, FeatureMaps]], fake: list[tuple[torch.Tensor, FeatureMaps]]
) -> torch.Tensor:
    """L1 between discriminator feature maps of real and generated audio."""
    return sum(
        F.l1_loss(f, r.detach()) for (_, rf), (_, ff) in zip(real, fake) for r, f in zip(rf, ff)
    )
