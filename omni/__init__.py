"""Omni: an any-to-any multimodal model kit over real transformers text backbones.

The public names are imported lazily (PEP 562), so the low modules under ``omni.common`` can be
used by ``encoders``, ``tokenizers_mm`` and ``decoders`` without importing the model, the
pipeline or generation (which themselves import those packages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "OmniConfig": "omni.config",
    "generate": "omni.generation",
    "generate_batch": "omni.generation",
    "generate_with_tools": "omni.generation",
    "load": "omni.generation",
    "stream": "omni.generation",
    "OmniForConditionalGeneration": "omni.modeling",
    "OmniOutput": "omni.modeling",
    "GenerationResult": "omni.pipeline",
    "OmniPipeline": "omni.pipeline",
    "StreamEvent": "omni.pipeline",
    "OmniBatch": "omni.processor",
    "OmniProcessor": "omni.processor",
    "Audio": "omni.sequence",
    "Image": "omni.sequence",
    "Sample": "omni.sequence",
    "Text": "omni.sequence",
    "ToolCall": "omni.sequence",
    "ToolResult": "omni.sequence",
    "Turn": "omni.sequence",
    "Video": "omni.sequence",
    "VocabLayout": "omni.vocab",
}

__all__ = [
    "Audio",
    "GenerationResult",
    "Image",
    "OmniBatch",
    "OmniConfig",
    "OmniForConditionalGeneration",
    "OmniOutput",
    "OmniPipeline",
    "OmniProcessor",
    "Sample",
    "StreamEvent",
    "Text",
    "ToolCall",
    "ToolResult",
    "Turn",
    "Video",
    "VocabLayout",
    "generate",
    "generate_batch",
    "generate_with_tools",
    "load",
    "stream",
]

# Registers "omni" with transformers' Auto classes, so AutoModelForCausalLM.from_pretrained(folder)
# works after `import omni`. omni.modeling imports no encoder, tokenizer or decoder module.
importlib.import_module("omni.modeling")

if TYPE_CHECKING:
    from omni.config import OmniConfig
    from omni.generation import generate, generate_batch, generate_with_tools, load, stream
    from omni.modeling import OmniForConditionalGeneration, OmniOutput
    from omni.pipeline import GenerationResult, OmniPipeline, StreamEvent
    from omni.processor import OmniBatch, OmniProcessor
    from omni.sequence import Audio, Image, Sample, Text, ToolCall, ToolResult, Turn, Video
    from omni.vocab import VocabLayout


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'omni' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
