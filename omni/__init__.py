"""Omni: an any-to-any multimodal model kit over real transformers text backbones."""

from omni.config import OmniConfig
from omni.generation import generate, generate_batch, load, stream
from omni.modeling import OmniForConditionalGeneration, OmniOutput
from omni.pipeline import GenerationResult, OmniPipeline, StreamEvent
from omni.processor import OmniBatch, OmniProcessor
from omni.sequence import Audio, Image, Sample, Text, Turn, Video
from omni.vocab import VocabLayout

__all__ = [
    "Audio",
    "GenerationResult",
    "OmniPipeline",
    "StreamEvent",
    "generate",
    "generate_batch",
    "load",
    "stream",
    "Image",
    "OmniBatch",
    "OmniConfig",
    "OmniForConditionalGeneration",
    "OmniOutput",
    "OmniProcessor",
    "Sample",
    "Text",
    "Turn",
    "Video",
    "VocabLayout",
]
