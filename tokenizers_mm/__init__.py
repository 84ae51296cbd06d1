"""Everything that turns a signal into discrete ids and back.

- ``text``: byte-level BPE and SuperBPE text tokenizers (``train_bpe``, ``train_superbpe``,
  ``micro_text_tokenizer``), saved as a ``tokenizer.json`` that ``AutoTokenizer`` loads.
- ``encodec``: EnCodec acoustic codes (``EncodecTokenizer``), ``[codebooks, frames]`` at 75 Hz.
- ``vision`` / ``audio``: semantic image codes and speech units.
- ``base.CodeTokenizer``: the encode / decode / save_pretrained / from_pretrained contract.

Names are resolved lazily so that ``import tokenizers_mm`` (and the CLI parser) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CodeTokenizer": "tokenizers_mm.base",
    "train_bpe": "tokenizers_mm.text",
    "train_superbpe": "tokenizers_mm.text",
    "micro_text_tokenizer": "tokenizers_mm.text",
    "bytes_per_token": "tokenizers_mm.text",
    "superword_share": "tokenizers_mm.text",
    "EncodecTokenizer": "tokenizers_mm.encodec",
    "train_encodec": "tokenizers_mm.encodec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tokenizers_mm' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
