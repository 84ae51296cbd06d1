"""Speech and decoding metrics the benchmarks report: mel-cepstral distortion, the unit-mel
Griffin-Lim baseline, Wilson intervals. In a module (not in ``benchmarks/``) so tests import
them like any other code.
"""

from __future__ import annotations

import math

import torch
import torchaudio

from training.toyworld.speech import SAMPLE_RATE


def wilson_interval(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a share measured on ``n`` independent cases."""
    share = float(share)
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)  # rounding can cross 0 or 1


def mel_cepstra(
    wave: torch.Tensor, sample_rate: int = SAMPLE_RATE, floor: float | None = None
) -> torch.Tensor:
    """c1..c12 mel-cepstra, frames x 12, on the scale the MCD formula assumes: the cosine
    transform of the natural-log mel *amplitude* (80 bands, 25 ms window / 10 ms hop),
    normalised like a real cepstrum, ``c_k = 1/M sum_j ln|X_j| cos(pi k (j + 1/2) / M)``.
    Mel power is floored at ``floor`` (default: 80 dB below the clip's loudest bin)."""
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate, n_fft=int(0.025 * sample_rate), hop_length=int(0.010 * sample_rate),
        n_mels=80,
    )(wave)  # fmt: skip
    floor = float(mel.max()) * 1e-8 if floor is None else floor
    log_amplitude = 0.5 * torch.log(mel.clamp(min=max(floor, 1e-20)))
    bands = torch.arange(80) + 0.5
    cosines = torch.cos(math.pi / 80 * torch.arange(1, 13)[:, None] * bands) / 80
    return (cosines @ log_amplitude).T


def mcd(
    reference: torch.Tensor,
    other: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    other_rate: int | None = None,
) -> float:
    """Frame-aligned mel-cepstral distortion in dB, ``10 / ln 10 * sqrt(2 sum_k (c_k -
    c'_k)^2)`` over c1..c12, averaged over the frames where the reference is voiced (within
    30 dB of its loudest frame). ``other`` is resampled to the reference's rate and cut or
    zero-padded to its length, and both are floored at the same level (80 dB below the
    reference's loudest mel bin), so digital silence in one signal and quiet noise in the
    other do not count as a large distortion."""
    if other_rate and other_rate != sample_rate:
        other = torchaudio.functional.resample(other, other_rate, sample_rate)
    other = torch.nn.functional.pad(other, (0, max(0, reference.numel() - other.numel())))
    other = other[: reference.numel()]
    hop = int(0.010 * sample_rate)
    power = torchaudio.transforms.MelSpectrogram(
        sample_rate, n_fft=int(0.025 * sample_rate), hop_length=hop, n_mels=80
    )(reference)
    floor = float(power.max()) * 1e-8
    a = mel_cepstra(reference, sample_rate, floor)
    b = mel_cepstra(other, sample_rate, floor)
    energy = torch.log(power.sum(0).clamp(min=1e-20))  # the cepstra's own frames
    voiced = energy >= energy.max() - 3 * math.log(10)  # within 30 dB of the loudest
    diff = (a - b)[voiced]
    return float((10 / math.log(10) * torch.sqrt(2 * (diff**2).sum(1))).mean())


def mel_frames(wave: torch.Tensor, hop: int) -> torch.Tensor:
    """80-band power mel of ``wave`` at ``hop`` samples per frame, ``[80, frames]``."""
    n_fft = max(400, 2 * hop)
    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=n_fft, hop_length=hop, n_mels=80)
    return mel(wave)


def griffin_lim(mel: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """Waveform of ``length`` samples from a ``mel_frames`` mel (pseudo-inverse, 32 iters)."""
    n_fft = max(400, 2 * hop)
    inverse = torchaudio.transforms.InverseMelScale(n_fft // 2 + 1, 80, SAMPLE_RATE, driver="gelsd")
    lim = torchaudio.transforms.GriffinLim(n_fft, n_iter=32, hop_length=hop)
    return lim(inverse(mel))[:length]


def unit_mel_table(clips: list[dict], num_units: int, hop: int) -> dict[str, torch.Tensor]:
    """Per voice, the mean log mel frame of every unit (``[num_units, 80]``) over ``clips``
    (``wave``, ``units`` at the unit rate, ``voice``): the mel that units and a voice name
    alone say, for a Griffin-Lim baseline that starts from the same input as the vocoder.
    A unit a voice never spoke takes the unit's mean over all voices, or the overall mean."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, torch.Tensor] = {}
    for clip in clips:
        log_mel = torch.log(mel_frames(clip["wave"], hop).clamp(min=1e-10)).T
        n = min(len(log_mel), clip["units"].numel())
        units = clip["units"][:n].long()
        voice = clip["voice"]
        sums.setdefault(voice, torch.zeros(num_units, 80)).index_add_(0, units, log_mel[:n])
        counts.setdefault(voice, torch.zeros(num_units)).index_add_(0, units, torch.ones(n))
    total_sum, total_count = sum(sums.values()), sum(counts.values())
    fallback = total_sum / total_count.clamp(min=1)[:, None]
    fallback[total_count == 0] = total_sum.sum(0) / total_count.sum()
    return {
        voice: torch.where(
            (counts[voice] > 0)[:, None],
            sums[voice] / counts[voice].clamp(min=1)[:, None],
            fallback,
        )
        for voice in sums
    }


def true_griffin_lim(wave: torch.Tensor, hop: int) -> torch.Tensor:
    """Griffin-Lim from the clip's own mel: an oracle that has the envelope units do not carry."""
    return griffin_lim(mel_frames(wave, hop), hop, wave.numel())


def unit_griffin_lim(clip: dict, table: dict[str, torch.Tensor], hop: int) -> torch.Tensor:
    """Griffin-Lim from the mel the clip's units and voice name give (``unit_mel_table``)."""
    units = clip["units"].long()
    # one frame more than units, as a centred STFT of the clip has: the last unit's, repeated
    mel = torch.exp(table[clip["voice"]][torch.cat([units, units[-1:]])]).T
    return griffin_lim(mel, hop, clip["wave"].numel())
