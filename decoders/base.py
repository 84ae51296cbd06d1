"""The contract every decoder (codes -> pixels or waveform) keeps with the rest of Omni.

``decode(codes, **conditioning)`` returns a ``PIL.Image`` for image decoders and a
``(sample_rate, waveform)`` pair (float32 numpy, mono, in [-1, 1]) for audio decoders.
Trainable decoders save as a folder of ``config.json`` (with a ``kind`` key) +
``model.safetensors``; ``load_decoder`` rebuilds any of them from such a folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class CodeDecoder(nn.Module):
    """Base class for decoders saved as config + safetensors and called through ``decode``."""

    kind: str = ""

    def decode(self, codes: Any, **conditioning: Any) -> Any:
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CodeDecoder:
        raise NotImplementedError

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"kind": self.kind, **self.to_config()}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> CodeDecoder:
        """Rebuild from a folder written by ``save_pretrained``; never unpickles."""
        config = read_config(folder)
        if cls.kind and config.get("kind") != cls.kind:
            raise ValueError(f"{folder} holds a {config.get('kind')!r} decoder, not {cls.kind!r}")
        config.pop("kind", None)
        model = cls.from_config(config)
        model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        model.eval()
        return model


def read_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a saved decoder folder, or a ValueError saying what is missing."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{folder} is not a saved decoder: no config.json in it")
    return json.loads(config_file.read_text())


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
