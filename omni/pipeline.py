"""``OmniPipeline``: a model with everything it needs to read inputs and write any modality.

A pipeline folder is the model's own folder (``config.json`` + ``model.safetensors``), the
text tokenizer files beside it, and one subfolder per discrete tokenizer and decoder, named
in the config (``code_tokenizers`` / ``decoders``). Loading never unpickles.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from transformers import AutoTokenizer

from omni.constraints import OutputConstraint
from omni.decoding import Decoder, DecodeStats, Sampling, supports_speculation
from omni.inputs import read_audio, to_sample
from omni.modeling import OmniForConditionalGeneration
from omni.processor import OmniProcessor
from omni.vocab import ASPECT_RATIOS

OUT_MODALITIES = ("text", "image", "audio", "auto")


@dataclass
class GenerationResult:
    """One answer: its text, image and audio (any may be None), ids and figures."""

    text: str = ""
    image: PILImage.Image | None = None
    audio: tuple[int, np.ndarray] | None = None
    tokens: list[int] = field(default_factory=list)
    images: list[PILImage.Image] = field(default_factory=list)
    audios: list[tuple[int, np.ndarray]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamEvent:
    """A piece of a streamed answer: ``text`` pieces, ``audio`` chunks, an ``image``, ``done``."""

    kind: str
    text: str = ""
    audio: tuple[int, np.ndarray] | None = None
    image: PILImage.Image | None = None
    result: GenerationResult | None = None


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
        self.tokenizer = tokenizer
        self.model.code_tokenizers = dict(code_tokenizers or {})
        self.decoders = dict(decoders or {})
        self.processor = OmniProcessor.from_model(model, tokenizer)
        self.layout = model.layout

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
        config.code_tokenizers = {m: f"{m}_tokenizer" for m in self.model.code_tokenizers}
        config.decoders = {m: f"{m}_decoder" for m in self.decoders}
        config.save_pretrained(folder)  # over the model's config.json: same, plus the subfolders
        self.tokenizer.save_pretrained(folder)
        for modality, tokenizer in self.model.code_tokenizers.items():
            tokenizer.save_pretrained(folder / f"{modality}_tokenizer")
        for modality, decoder in self.decoders.items():
            decoder.save_pretrained(folder / f"{modality}_decoder")

    # --- generation ----------------------------------------------------------------------
    def generate(self, inputs: Any, out_modality: str = "text", **options: Any) -> GenerationResult:
        """Answer one request (see ``omni.generate`` for the options)."""
        return self.generate_batch([inputs], out_modality, **options)[0]

    def generate_batch(
        self, requests: list[Any], out_modality: str = "text", **options: Any
    ) -> list[GenerationResult]:
        """Answer several requests as one left-padded batch (plain decoding)."""
        plan = self._plan(requests, out_modality, options)
        if len(requests) == 1 and plan["speculative"]:
            output = plan["decoder"].run_speculative(plan["batch"])
        else:
            output = plan["decoder"].run(plan["batch"])
        return [self._finish(answer, output.stats, plan) for answer in output.sequences]

    def stream(
        self, inputs: Any, out_modality: str = "text", **options: Any
    ) -> Iterator[StreamEvent]:
        """Yield text pieces and audio chunks while the answer is generated; ends with ``done``.

        Decoding runs in one thread and, while an audio block is open, the vocoder's chunked
        synthesis in another, so the first audio arrives before the last unit is decoded.
        """
        events: queue.Queue = queue.Queue()
        plan = self._plan([inputs], out_modality, options, lambda _r, t: events.put(("tokens", t)))
        outcome = plan["outcome"]
        _spawn(self._decode_job(plan), events, outcome)
        producers, answer, shown, units = 1, [], "", None
        while producers:
            kind, payload = events.get()
            if kind == "finished":
                producers -= 1
            elif kind == "audio":
                yield StreamEvent("audio", audio=payload)
            elif kind == "tokens":
                for token in payload:
                    answer.append(token)
                    units, started = self._route_unit(token, units, plan, events)
                    producers += started
                text = self._text_of(answer)
                if len(text) > len(shown) and not text.endswith("\ufffd"):
                    yield StreamEvent("text", text=text[len(shown) :])
                    shown = text
        if units is not None:
            units.put(None)
        if "error" in outcome:
            raise outcome["error"]
        text = self._text_of(answer)
        if len(text) > len(shown):  # what was held back waiting for a multi-byte character
            yield StreamEvent("text", text=text[len(shown) :])
        output = outcome["output"]
        yield StreamEvent("done", result=self._finish(output.sequences[0], output.stats, plan))

    def _decode_job(self, plan: dict[str, Any]):
        def job() -> None:
            decoder = plan["decoder"]
            run = decoder.run_speculative if plan["speculative"] else decoder.run
            plan["outcome"]["output"] = run(plan["batch"])

        return job

    def _route_unit(self, token: int, units, plan: dict[str, Any], events: queue.Queue):
        """Feed audio units to a running vocoder stream; start one at ``<|daud_start|>``."""
        layout = self.layout
        if token == layout.special_id("<|daud_start|>") and "audio" in self.decoders:
            units = queue.Queue()
            vocoder, chunks = self.decoders["audio"], _drain(units)
            stream = vocoder.stream(chunks, speaker=plan["voice"])

            def job() -> None:
                for chunk in stream:
                    events.put(("audio", (vocoder.sample_rate, chunk)))

            _spawn(job, events, plan["outcome"])
            return units, 1
        if units is not None and token == layout.special_id("<|daud_end|>"):
            units.put(None)
            return None, 0
        if units is not None and layout.lookup(token)[0] == "audio":
            units.put([layout.lookup(token)[1]])
        return units, 0

    # --- planning and finishing ----------------------------------------------------------
    def _plan(self, requests, out_modality, options, on_tokens=None) -> dict[str, Any]:
        options = dict(options)
        if out_modality not in OUT_MODALITIES:
            raise ValueError(f"out_modality must be one of {OUT_MODALITIES}, got {out_modality!r}")
        if out_modality in ("image", "audio") and out_modality not in self.decoders:
            raise ValueError(
                f"this model has no {out_modality} decoder, so it cannot answer with {out_modality}"
            )
        sample_rate = options.pop("sample_rate", None)
        think = bool(options.pop("think", False))
        max_new_tokens = int(options.pop("max_new_tokens", 256))
        speculative = options.pop("speculative", None)
        voice = options.pop("voice", None)
        image_options = {k: options.pop(k) for k in ("steps", "guidance") if k in options}
        sampling = Sampling(
            temperature=float(options.pop("temperature", 0.0)),
            top_p=float(options.pop("top_p", 1.0)),
            top_k=int(options.pop("top_k", 0)),
            seed=options.pop("seed", None),
        )
        if options:
            raise ValueError(f"unknown generation options: {', '.join(sorted(options))}")
        constraint = OutputConstraint(self.layout, out_modality)
        if max_new_tokens < constraint.min_tokens():
            raise ValueError(
                f"max_new_tokens={max_new_tokens} is too small to close a {out_modality} answer: "
                f"it needs at least {constraint.min_tokens()} tokens"
            )
        samples = [to_sample(r, sample_rate) for r in requests]
        batch = self.processor(
            samples, padding_side="left", add_generation_prompt=True, think=think
        )
        decoder = Decoder(
            self.model, [constraint] * len(samples), sampling, max_new_tokens, on_tokens
        )
        if speculative is None:
            speculative = supports_speculation(self.model)
        elif speculative and not supports_speculation(self.model):
            raise ValueError("speculative=True needs a model with an MTP module")
        return {
            "batch": batch,
            "decoder": decoder,
            "speculative": bool(speculative) and len(samples) == 1,
            "voice": self._voice(voice),
            "image_options": {**image_options, "seed": sampling.seed or 0},
            "started": time.perf_counter(),
            "outcome": {},
        }

    def _voice(self, voice: Any) -> Any:
        if voice is None or isinstance(voice, str) and not Path(voice).is_file():
            return voice
        wave, rate = read_audio(voice)
        return (rate, wave)

    def _text_of(self, answer: list[int]) -> str:
        text_ids = [t for t in answer if t < self.layout.text_size]
        return self.tokenizer.decode(text_ids, skip_special_tokens=True)

    def _finish(
        self, answer: list[int], stats: DecodeStats, plan: dict[str, Any]
    ) -> GenerationResult:
        result = GenerationResult(text=self._text_of(answer), tokens=list(answer))
        decode_start = time.perf_counter()
        for kind, body in self._blocks(answer):
            if kind == "image" and "image" in self.decoders:
                codes, ratio = self._image_codes(body)
                image = self.decoders["image"].decode(codes, ratio=ratio, **plan["image_options"])
                result.images.append(image)
            elif kind == "audio" and "audio" in self.decoders and body:
                units = self.layout.ids_to_codes("audio", torch.tensor(body))
                result.audios.append(self.decoders["audio"].decode(units, speaker=plan["voice"]))
        result.image = result.images[0] if result.images else None
        result.audio = result.audios[0] if result.audios else None
        finished = time.perf_counter()
        result.timings = {
            "prefill_s": stats.prefill_s,
            "decode_s": stats.decode_s,
            "media_decode_s": finished - decode_start,
            "total_s": finished - plan["started"],
        }
        result.usage = {
            "prompt_tokens": stats.prompt_tokens,
            "new_tokens": len(answer),
            "forwards": stats.forwards,
            "drafts": stats.drafts,
            "accepted_drafts": stats.accepted,
            "acceptance_rate": stats.acceptance_rate,
        }
        return result

    def _blocks(self, answer: list[int]) -> Iterator[tuple[str, list[int]]]:
        """Complete image / audio blocks of an answer: (kind, the ids between the markers)."""
        layout = self.layout
        pairs = {
            layout.special_id("<|dimg_start|>"): ("image", layout.special_id("<|dimg_end|>")),
            layout.special_id("<|daud_start|>"): ("audio", layout.special_id("<|daud_end|>")),
        }
        index = 0
        while index < len(answer):
            if answer[index] in pairs:
                kind, closer = pairs[answer[index]]
                if closer not in answer[index + 1 :]:
                    return
                end = answer.index(closer, index + 1)
                yield kind, answer[index + 1 : end]
                index = end
            index += 1

    def _image_codes(self, body: list[int]) -> tuple[torch.Tensor, str]:
        ratio = self.layout.special_name(body[0])[len("<|ratio_") : -2]
        codes = [t for t in body[1:] if self.layout.lookup(t)[0] == "image"]
        rows, cols = self.layout.image_grid
        if ratio not in ASPECT_RATIOS or len(codes) != rows * cols:
            raise ValueError(f"malformed image block: {len(codes)} codes for a {rows}x{cols} grid")
        return self.layout.ids_to_codes("image", torch.tensor(codes)).reshape(rows, cols), ratio


def _drain(units: queue.Queue) -> Iterator[list[int]]:
    """Unit chunks from a queue until its ``None`` sentinel."""
    while (chunk := units.get()) is not None:
        yield chunk


def _spawn(job, events: queue.Queue, outcome: dict[str, Any]) -> None:
    """Run a job in a daemon thread; errors go to ``outcome``; always report ``finished``."""

    def run() -> None:
        try:
            job()
        except Exception as error:  # handed to the consumer, raised in its thread
            outcome.setdefault("error", error)
        finally:
            events.put(("finished", None))

    threading.Thread(target=run, daemon=True).start()
