"""The contract every continuous encoder (vision, audio, video) keeps with the rest of Omni.

An encoder owns its preprocessing (raw signal -> one model-input tensor), knows how many
sequence slots one preprocessed item fills, and maps a list of items to a list of
``[num_tokens(item), out_dim]`` embeddings already projected to the backbone width. The
processor calls ``preprocess`` and ``num_tokens``; the model calls ``forward``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from omni.common.persistence import SavedModule


class ContinuousEncoder(SavedModule):
    """Base class: an encoder plus projector that fills continuous slots of the sequence.

    Saved like every trainable part (``omni.common.persistence``), with its kind under
    ``type`` (the key ``OmniConfig.encoders`` entries use too);
    ``ContinuousEncoder.from_pretrained`` rebuilds any kind.
    """

    artifact = "encoder"
    kind_key = "type"
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

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ContinuousEncoder:
        """Build from constructor options (no ``type``), refusing unknown ones by name."""
        options = {key: value for key, value in config.items() if key != cls.kind_key}
        known = set(inspect.signature(cls).parameters)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.kind} encoder options {unknown}; known: {sorted(known)}"
            )
        return cls(**options)

    def saved_config(self) -> dict[str, Any]:
        """The ``pretrained`` entries are dropped from the saved config: the weights now live
        in ``model.safetensors``, so reloading never needs the original checkpoint."""
        return _without_pretrained(super().saved_config())


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
