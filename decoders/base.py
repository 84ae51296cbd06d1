"""The contract every decoder (codes -> pixels or waveform) keeps with the rest of Omni.

``decode(codes, **conditioning)`` returns a ``PIL.Image`` for image decoders and a
``(sample_rate, waveform)`` pair (float32 numpy, mono, in [-1, 1]) for audio decoders.
Trainable decoders save as a folder of ``config.json`` (with a ``kind`` key) +
``model.safetensors`` (``omni.common.persistence``); ``CodeDecoder.from_pretrained`` (alias
``load_decoder``) rebuilds any of them from such a folder.
"""

from __future__ import annotations

from typing import Any

import torch

from omni.common.persistence import SavedModule


class CodeDecoder(SavedModule):
    """Base class for decoders saved as config + safetensors and called through ``decode``."""

    artifact = "decoder"

    def decode(self, codes: Any, **conditioning: Any) -> Any:
        raise NotImplementedError


def as_code_tensor(codes: Any, name: str, size: int, ndim: int) -> torch.Tensor:
    """Check user codes: integer, ``ndim`` dimensions, non-empty, each in ``[0, size)``."""
    codes = torch.as_tensor(codes)
    if codes.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(codes.shape)}); nothing to decode")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"{name} must be integers, got dtype {codes.dtype}")
    if codes.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(codes.shape)}")
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= size:
        raise ValueError(
            f"{name} out of range: values span [{low}, {high}], valid is [0, {size - 1}]"
        )
    return codes.long()
