"""``OmniPipeline``: a model with everything it needs to read inputs and write any modality.

A pipeline folder is the model's own folder (``config.json`` + ``model.safetensors``), the
text tokenizer files beside it, and one subfolder per discrete tokenizer and decoder, named
in the config (``code_tokenizers`` / ``decoders``). Loading never unpickles.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from omni.chat_template import attach_chat_template
from omni.modeling import OmniForConditionalGeneration
from omni.options import parse_device, parse_dtype
from omni.planning import OUT_MODALITIES, answer_text, finish, plan
from omni.processor import OmniProcessor
from omni.results import GenerationResult, StreamEvent

__all__ = ["OUT_MODALITIES", "GenerationResult", "OmniPipeline", "StreamEvent"]


class OmniPipeline:
    """Model + text tokenizer + discrete tokenizers + decoders, behind ``generate``/``stream``."""

    def __init__(
        self,
        model: OmniForConditionalGeneration,
        tokenizer: Any,
        code_tokenizers: dict[str, Any] | None = None,
        decoders: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = attach_chat_template(tokenizer, model.layout)  # also for older folders
        self.model.code_tokenizers = dict(code_tokenizers or {})
        self.decoders = dict(decoders or {})
        self.processor = OmniProcessor.from_model(model, self.tokenizer)
        self.layout = model.layout
        self.speculation: dict[str, Any] = {}  # out modality -> its SpeculationPolicy

    # --- persistence ---------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder: str | Path) -> OmniPipeline:
        """Rebuild a pipeline folder: model, text tokenizer, and the code tokenizers and
        decoders in the subfolders its config names (``omni.common.registry`` kinds)."""
        from decoders.base import CodeDecoder
        from tokenizers_mm.base import CodeTokenizer

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a saved Omni model: no config.json in it")
        model = OmniForConditionalGeneration.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        config = model.config
        code_tokenizers = {
            m: CodeTokenizer.from_pretrained(folder / sub)
            for m, sub in (config.code_tokenizers or {}).items()
        }
        decoders = {
            m: CodeDecoder.from_pretrained(folder / sub)
            for m, sub in (config.decoders or {}).items()
        }
        return cls(model, tokenizer, code_tokenizers, decoders)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the pipeline folder; the saved config names the subfolders, the live model's
        config is left as it is."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        config = copy.deepcopy(self.model.config)
        config.encoders = self.model.held_encoder_configs()  # one attached by hand included
        config.code_tokenizers = {m: f"{m}_tokenizer" for m in self.model.code_tokenizers}
        config.decoders = {m: f"{m}_decoder" for m in self.decoders}
        config.save_pretrained(folder)  # over the model's config.json: same, plus the subfolders
        self.tokenizer.save_pretrained(folder)
        for modality, tokenizer in self.model.code_tokenizers.items():
            tokenizer.save_pretrained(folder / f"{modality}_tokenizer")
        for modality, decoder in self.decoders.items():
            decoder.save_pretrained(folder / f"{modality}_decoder")

    # --- placement ---------------------------------------------------------------------
    def to(
        self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
    ) -> OmniPipeline:
        """Move the model and its decoders to ``device`` / cast them to ``dtype`` (names such
        as ``"cuda"`` and ``"bfloat16"`` are accepted); generation then follows them."""
        device, dtype = parse_device(device), parse_dtype(dtype)
        for module in (self.model, *self.decoders.values()):
            module.to(device=device, dtype=dtype)
        return self

    # --- generation ----------------------------------------------------------------------
    def generate(self, inputs: Any, out_modality: str = "text", **options: Any) -> GenerationResult:
        """Answer one request (see ``omni.generate`` for the options)."""
        return self.generate_batch([inputs], out_modality, **options)[0]

    def generate_batch(
        self, requests: list[Any], out_modality: str = "text", **options: Any
    ) -> list[GenerationResult]:
        """Answer several requests as one left-padded batch (speculative where the model has
        MTP, with one drafting policy for the whole batch)."""
        request = plan(self, requests, out_modality, options)
        for _ in request.columns():
            pass
        decoder = request.decoder
        return [
            finish(self, answer, decoder.stats, request, row)
            for row, answer in enumerate(decoder.answers)
        ]

    def stream(
        self, inputs: Any, out_modality: str = "text", **options: Any
    ) -> Iterator[StreamEvent]:
        """Yield text pieces and audio chunks while the answer is generated; ends with ``done``.

        One thread does it all: the decoding loop is a generator this one pulls from, and
        while an audio block is open the vocoder's chunked synthesis pulls the units from that
        same loop, so the first audio arrives before the last unit is decoded.
        """
        request = plan(self, [inputs], out_modality, options)
        think, vocoder = request.options.think, self.decoders.get("audio")
        tokens = (token for column in request.columns() for token in column[0])
        answer: list[int] = []
        shown = ""
        for token in tokens:
            answer.append(token)
            if token == self.layout.special_id("<|daud_start|>") and vocoder is not None:
                units = _block_units(tokens, answer, self.layout.range_of("audio"))
                first = next(units, None)  # a block cut off before any unit has no audio
                if first is not None:
                    for wave in vocoder.stream(chain([first], units), speaker=request.voice):
                        yield StreamEvent("audio", audio=(vocoder.sample_rate, wave))
            text = answer_text(self, answer, think) if token < self.layout.text_size else shown
            if len(text) > len(shown) and not text.endswith("\ufffd"):
                yield StreamEvent("text", text=text[len(shown) :])
                shown = text
        text = answer_text(self, answer, think)
        if len(text) > len(shown):  # what was held back waiting for a multi-byte character
            yield StreamEvent("text", text=text[len(shown) :])
        result = finish(self, answer, request.decoder.stats, request)
        yield StreamEvent("done", result=result)


def _block_units(tokens: Iterator[int], answer: list[int], audio: range) -> Iterator[list[int]]:
    """The units of the open audio block, one chunk each, pulled from the decoding loop as
    the vocoder asks for them; the block's end (or the answer's) stops them."""
    for token in tokens:
        answer.append(token)
        if token not in audio:
            return
        yield [token - audio.start]
