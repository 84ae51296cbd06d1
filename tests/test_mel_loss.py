"""One multi-resolution mel loss (``omni.common.mel``) for the vocoder and EnCodec trainers,
with the values each trainer had before."""

from __future__ import annotations

import torch
import torchaudio

from omni.common.mel import MultiResolutionMelLoss
from tokenizers_mm.encodec import MEL_RESOLUTIONS


def _reference(fake, real, rate, resolutions, floor):
    """The two hand-written losses this one replaces: mean L1 of log-magnitude mels."""
    losses = []
    for n_fft, hop, n_mels in resolutions:
        mel = torchaudio.transforms.MelSpectrogram(
            rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0
        )
        losses.append((floor(mel(fake)).log() - floor(mel(real)).log()).abs().mean())
    return torch.stack(losses).mean()


def test_vocoder_mel_loss_is_the_one_it_trained_with():
    torch.manual_seed(0)
    fake, real = torch.randn(2, 4000) * 0.1, torch.randn(2, 4000) * 0.1
    resolutions = ((256, 64, 32), (512, 128, 64), (1024, 256, 80))
    expected = _reference(fake, real, 16000, resolutions, lambda m: m.clamp(min=1e-5))
    assert torch.allclose(MultiResolutionMelLoss(16000)(fake, real), expected, atol=1e-6)


def test_encodec_mel_loss_matches_its_former_value_on_sound():
    torch.manual_seed(1)
    fake, real = torch.randn(2, 12000) * 0.1, torch.randn(2, 12000) * 0.1
    expected = _reference(fake, real, 24000, MEL_RESOLUTIONS, lambda m: m + 1e-5)
    loss = MultiResolutionMelLoss(24000, MEL_RESOLUTIONS)(fake, real)
    assert torch.allclose(loss, expected, rtol=1e-3)
    assert [m.mel.n_mels for m in MultiResolutionMelLoss(24000, MEL_RESOLUTIONS).mels] == [
        32,
        64,
        64,
        64,
    ]


def test_mel_loss_is_zero_for_equal_waves_and_grows_with_the_difference():
    torch.manual_seed(2)
    real = torch.randn(1, 8000) * 0.1
    loss = MultiResolutionMelLoss(16000)
    assert float(loss(real, real)) == 0.0
    assert float(loss(real * 0.5, real)) < float(loss(real * 0.1, real))
