"""The contract every continuous encoder (vision, audio, video) keeps with the rest of Omni.

An encoder owns its preprocessing (raw signal -> one model-input tensor), knows how many
sequence slots one preprocessed item fills, and maps a list of items to a list of
``[num_tokens(item), out_dim]`` embeddings already projected to the backbone width. The
processor calls ``preprocess`` and ``num_tokens``; the model calls ``forward``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn


class ContinuousEncoder(nn.Module):
    """Base class: an encoder plus projector that fills continuous slots of the sequence."""

    modality: str = ""

    def preprocess(self, signal: Any, **kwargs: Any) -> Any:
        """Turn one raw signal (PIL image, path, waveform, frames) into one model input."""
        raise NotImplementedError

    def num_tokens(self, item: Any) -> int:
        """How many sequence slots the preprocessed ``item`` fills."""
        raise NotImplementedError

    def forward(self, items: list[Any]) -> list[torch.Tensor]:
        """Encode preprocessed items; one ``[num_tokens(item), out_dim]`` tensor each."""
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config that ``encoders.build_encoder`` rebuilds this from."""
        raise NotImplementedError

    # --- persistence shared by every encoder (added by the encoders helper; contract unchanged) ---

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` (``to_config()``) and ``model.safetensors`` into ``folder``.

        The ``pretrained`` entries are dropped from the saved config: the weights now live in
        ``model.safetensors``, so reloading never needs the original checkpoint.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = _without_pretrained(self.to_config())
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_model(self, str(folder / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ContinuousEncoder:
        """Rebuild an encoder saved by ``save_pretrained`` (config + safetensors, no pickle)."""
        from encoders import build_encoder

        folder = Path(folder)
        config_path, weights_path = folder / "config.json", folder / "model.safetensors"
        for path in (config_path, weights_path):
            if not path.is_file():
                raise ValueError(f"{path} not found: not a folder written by save_pretrained")
        encoder = build_encoder(json.loads(config_path.read_text()))
        if not isinstance(encoder, cls):
            raise ValueError(f"{folder} holds a {type(encoder).__name__}, not a {cls.__name__}")
        load_model(encoder, str(weights_path))
        return encoder


def _without_pretrained(config: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``config`` with every nested ``pretrained`` entry set to ``None``."""
    return {
        key: None
        if key == "pretrained"
        else _without_pretrained(value)
        if isinstance(value, dict)
        else value
        for key, value in config.items()
    }
