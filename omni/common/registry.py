"""The one table from a saved folder's ``kind`` to the class that reads it.

Classes are named by module path and imported only when asked for, so this low module
imports none of ``encoders``, ``tokenizers_mm`` or ``decoders`` and no cycle can form.
Kinds are per artifact: an EnCodec folder is ``encodec`` both as a tokenizer and a decoder.
"""

from __future__ import annotations

import importlib

# artifact -> kind (the ``kind``/``type`` value in config.json) -> "module:Class".
REGISTRY: dict[str, dict[str, str]] = {
    "encoder": {
        "vision": "encoders.vision:VisionEncoder",
        "audio": "encoders.audio:AudioEncoder",
        "video": "encoders.video:VideoEncoder",
        "qwen2_5_vl_vision": "encoders.qwen_vision:QwenVisionEncoder",
        "qwen2_audio": "encoders.qwen_audio:QwenAudioEncoder",
    },
    "tokenizer": {
        "image": "tokenizers_mm.vision:SemanticImageTokenizer",
        "speech": "tokenizers_mm.audio:SpeechUnitTokenizer",
        "encodec": "tokenizers_mm.encodec:EncodecTokenizer",
    },
    "decoder": {
        "diffusion_image": "decoders.vision:ImageDecoder",
        "unit_bigvgan": "decoders.audio:UnitVocoder",
        "encodec": "decoders.encodec:EncodecDecoder",
    },
}


def resolve(artifact: str, kind: object, source: object = "config") -> type:
    """The class registered for ``kind`` of ``artifact``; ``source`` names where the kind was
    read (a folder, a config) in the ValueError for an unknown one."""
    kinds = REGISTRY[artifact]
    if kind not in kinds:
        raise ValueError(
            f"{source} holds an unknown {artifact} kind {kind!r}; known: {sorted(kinds)}"
        )
    module, name = kinds[kind].split(":")
    return getattr(importlib.import_module(module), name)
