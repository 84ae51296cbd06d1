"""Log-mel magnitudes and the multi-resolution mel L1 loss, shared by the vocoder (its speaker
encoder's frontend and its training loss) and the EnCodec trainer.

Written here because torchaudio has the mel transform but no multi-resolution mel loss, and
the ``encodec`` package ships no losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


class LogMel(nn.Module):
    """Log-mel frontend (default: 25 ms window, 10 ms hop); magnitudes floored at 1e-5."""

    def __init__(self, sample_rate: int, n_mels: int, n_fft: int = 0, hop: int = 0) -> None:
        super().__init__()
        n_fft = n_fft or int(0.025 * sample_rate)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=n_fft,
            hop_length=hop or int(0.010 * sample_rate),
            n_mels=n_mels,
            power=1.0,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``[B, samples] -> [B, n_mels, frames]`` natural-log magnitudes."""
        return torch.log(self.mel(wave).clamp(min=1e-5))


class MultiResolutionMelLoss(nn.Module):
    """Mean over resolutions ``(n_fft, hop, n_mels)`` of the L1 between log-mels."""

    def __init__(
        self,
        sample_rate: int,
        resolutions: tuple[tuple[int, int, int], ...] = (
            (256, 64, 32),
            (512, 128, 64),
            (1024, 256, 80),
        ),
    ) -> None:
        super().__init__()
        self.mels = nn.ModuleList(
            LogMel(sample_rate, n_mels, n_fft=n_fft, hop=hop) for n_fft, hop, n_mels in resolutions
        )

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``fake``, ``real``: ``[B, samples]`` waveforms."""
        return torch.stack([F.l1_loss(mel(fake), mel(real)) for mel in self.mels]).mean()
