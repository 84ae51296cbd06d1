"""The contract every discrete tokenizer (image codes, speech units, EnCodec codes) keeps.

``encode(signal) -> codes`` (a LongTensor: ``[rows, cols]`` for images, ``[frames]`` for
speech units, ``[codebooks, frames]`` for EnCodec), ``decode(codes)`` where the tokenizer has
its own decoder, a ``codebook_size`` that sizes its block of the unified vocabulary, and
``save_pretrained`` / ``from_pretrained`` over a folder of ``config.json`` + safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class SavedModule(nn.Module):
    """A module saved as a folder of ``config.json`` (with its ``kind``) + ``model.safetensors``.

    Shared by the discrete tokenizers here and the decoders in ``decoders/``; ``artifact``
    names what the folder holds in error messages.
    """

    kind: str = ""
    artifact: str = "model"

    def to_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SavedModule:
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
    def from_pretrained(cls, folder: str | Path) -> SavedModule:
        """Rebuild from a folder written by ``save_pretrained``; never unpickles."""
        config = read_config(folder, cls.artifact)
        if cls.kind and config.get("kind") != cls.kind:
            raise ValueError(
                f"{folder} holds a {config.get('kind')!r} {cls.artifact}, not {cls.kind!r}"
            )
        config.pop("kind", None)
        model = cls.from_config(config)
        model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        model.eval()
        return model


def read_config(folder: str | Path, artifact: str = "model") -> dict[str, Any]:
    """The ``config.json`` of a saved folder, or a ValueError saying it is missing."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{folder} is not a saved {artifact}: no config.json in it")
    return json.loads(config_file.read_text())


class CodeTokenizer(SavedModule):
    """Base class for trainable signal -> code tokenizers saved as config + safetensors."""

    artifact = "tokenizer"
    codebook_size: int = 0

    def encode(self, signal: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, codes: torch.Tensor, **kwargs: Any) -> Any:
        raise NotImplementedError(f"the {self.kind} tokenizer has no decoder of its own")
