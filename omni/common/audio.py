"""The one audio reader: a file, file bytes or an array -> float32 mono samples and their rate.

Conventions every caller relies on:

- **Order**: functions here return ``(wave, sample_rate)``, soundfile's and torchaudio's order.
  A pair handed *in* may be either ``(wave, rate)`` or ``(rate, wave)`` (Gradio's order): the
  scalar side is the rate.
- **Downmix**: the mean over channels. A file is read as ``[frames, channels]``; a 2-D array may
  be ``[channels, samples]`` or ``[samples, channels]``, and its shorter axis is the channels.
- **Integer PCM** (``int8``/``int16``/``int32``/``uint8``, numpy or torch) is scaled by its
  dtype's range to ``[-1, 1)``, as soundfile does for integer WAV files: an ``int16`` clip and
  the same clip as floats give the same samples.
- **Resampling** goes through ``torchaudio.functional.resample``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio

# Full-scale value of each integer PCM dtype and its zero point (uint8 PCM is offset by 128).
_PCM_SCALE = {
    np.dtype(np.int8): (128.0, 0.0),
    np.dtype(np.int16): (32768.0, 0.0),
    np.dtype(np.int32): (2147483648.0, 0.0),
    np.dtype(np.uint8): (128.0, 128.0),
}


def to_float(waveform: Any, name: str = "the audio") -> torch.Tensor:
    """A numeric array or tensor as float32 on the CPU, integer PCM scaled to ``[-1, 1)``."""
    if isinstance(waveform, torch.Tensor):
        tensor = waveform.detach().cpu()
        if tensor.dtype.is_floating_point:
            return tensor.float()
        array = tensor.numpy()
    else:
        try:
            array = np.asarray(waveform)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a numeric array: {error}") from error
    if array.dtype.kind == "f":
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if array.dtype not in _PCM_SCALE:
        raise ValueError(
            f"{name} has dtype {array.dtype}; give float samples or integer PCM "
            f"(int8, int16, int32, uint8)"
        )
    scale, zero = _PCM_SCALE[array.dtype]
    return torch.from_numpy((array.astype(np.float64) - zero).astype(np.float32) / scale)


def to_mono(waveform: Any, name: str = "the audio") -> torch.Tensor:
    """Finite, non-empty float32 mono ``[samples]`` from a 1-D or 2-D waveform (see module)."""
    signal = to_float(waveform, name)
    if signal.dim() == 2:
        channel_axis = 0 if signal.shape[0] <= signal.shape[1] else 1
        signal = signal.mean(dim=channel_axis)
    elif signal.dim() != 1:
        raise ValueError(
            f"{name} must be [samples] or [channels, samples] / [samples, channels], "
            f"got shape {tuple(signal.shape)}"
        )
    if signal.numel() == 0:
        raise ValueError(f"{name} is empty (0 seconds of audio)")
    if not torch.isfinite(signal).all():
        raise ValueError(f"{name} contains NaN or infinite samples")
    return signal


def check_rate(sample_rate: Any, name: str = "the audio") -> int:
    """``sample_rate`` as a positive int, else a ``ValueError`` naming ``name``."""
    if isinstance(sample_rate, torch.Tensor) and sample_rate.dim() == 0:
        sample_rate = sample_rate.item()
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.number)):
        raise ValueError(f"{name} needs a numeric sample rate, got {sample_rate!r}")
    if not np.isfinite(sample_rate) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise ValueError(f"{name} has an invalid sample rate {sample_rate!r}")
    return int(sample_rate)


def resample(wave: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """``wave`` (``[..., samples]``) from ``sample_rate`` to ``target_rate``."""
    if sample_rate == target_rate:
        return wave
    return torchaudio.functional.resample(wave, int(sample_rate), int(target_rate))


def read_audio(
    source: Any, sample_rate: int | None = None, target_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """Any audio -> ``(float32 mono samples, sample_rate)``.

    ``source`` is a path, file bytes, a binary file object, a ``(wave, rate)`` / ``(rate, wave)``
    pair, or an array / tensor with ``sample_rate=``. ``target_rate`` resamples the result.
    """
    wave, rate = _read(source, sample_rate)
    if target_rate is not None and rate != target_rate:
        wave, rate = resample(wave, rate, check_rate(target_rate, "target_rate")), target_rate
    return wave.numpy(), rate


def _read(source: Any, sample_rate: int | None) -> tuple[torch.Tensor, int]:
    if isinstance(source, tuple) and len(source) == 2:
        first, second = source
        rate, wave = (first, second) if _is_scalar(first) else (second, first)
        return to_mono(wave, "the audio array"), check_rate(rate, "the audio array")
    if isinstance(source, (np.ndarray, torch.Tensor, list)):
        if sample_rate is None:
            raise ValueError("a raw waveform needs sample_rate= (e.g. sample_rate=16000)")
        return to_mono(source, "the audio array"), check_rate(sample_rate, "the audio array")
    if isinstance(source, (str, Path)):
        name, data = str(source), str(source)
    elif isinstance(source, (bytes, bytearray)):
        name, data = "the audio bytes", io.BytesIO(source)
    elif hasattr(source, "read"):
        name, data = "the audio file object", source
    else:
        raise ValueError(
            f"cannot read audio from a {type(source).__name__}: give a path, file bytes, a "
            f"(sample_rate, array) pair or an array with sample_rate="
        )
    try:
        wave, rate = soundfile.read(data, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise ValueError(f"cannot read audio from {name}: {error}") from error
    # soundfile always gives [frames, channels]: average the channel axis, never guess it.
    return to_mono(wave.mean(axis=1), name), check_rate(rate, name)


def _is_scalar(value: Any) -> bool:
    return np.isscalar(value) or isinstance(value, torch.Tensor) and value.dim() == 0
