"""EnCodec decoding behind the decoders interface: ``[codebooks, frames]`` codes -> 24 kHz
audio. A thin wrapper: the codec itself (and its checks) is ``tokenizers_mm.encodec``."""

from __future__ import annotations

from typing import Any

import numpy as np

from decoders.base import CodeDecoder


class EncodecDecoder(CodeDecoder):
    """The decoder half of an ``EncodecTokenizer``, saved and loaded like every decoder."""

    kind = "encodec"

    def __init__(self, tokenizer: Any) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    @property
    def sample_rate(self) -> int:
        return self.tokenizer.sample_rate

    def decode(self, codes: Any, **conditioning: Any) -> tuple[int, np.ndarray]:
        """``[codebooks, frames]`` codes -> ``(24000, float32 waveform)``."""
        return self.tokenizer.decode(codes, **conditioning)

    def to_config(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.to_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncodecDecoder:
        from tokenizers_mm.encodec import EncodecTokenizer

        return cls(EncodecTokenizer.from_config(config["tokenizer"]))
