"""The contract every discrete tokenizer (image codes, speech units, EnCodec codes) keeps.

``encode(signal) -> codes`` (a LongTensor: ``[rows, cols]`` for images, ``[frames]`` for
speech units, ``[codebooks, frames]`` for EnCodec), ``decode(codes)`` where the tokenizer has
its own decoder, a ``codebook_size`` that sizes its block of the unified vocabulary, and
``save_pretrained`` / ``from_pretrained`` over a folder of ``config.json`` + safetensors
(``omni.common.persistence``; ``CodeTokenizer.from_pretrained`` loads any kind).
"""

from __future__ import annotations

from typing import Any

import torch

from omni.common.persistence import SavedModule


class CodeTokenizer(SavedModule):
    """Base class for trainable signal -> code tokenizers saved as config + safetensors."""

    artifact = "tokenizer"
    codebook_size: int = 0

    def encode(self, signal: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, codes: torch.Tensor, **kwargs: Any) -> Any:
        raise NotImplementedError(f"the {self.kind} tokenizer has no decoder of its own")
