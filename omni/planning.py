"""The two ends of a generation: the plan (checked options, prompt batch, decoder, voice) made
before any token is decoded, and the finish that turns an answer's ids into a result.

Everything that can be wrong with a request is found while planning, so a bad option, input or
voice is a ``ValueError`` before the model runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni.blocks import AudioBlock, BlockCodec, ImageBlock
from omni.constraints import OutputConstraint
from omni.decoding import Column, Decoder, DecodeStats, speculates_by_default, supports_speculation
from omni.inputs import read_audio, to_sample
from omni.options import GenerationOptions
from omni.processor import OmniBatch
from omni.results import GenerationResult
from omni.speculation import SpeculationPolicy, speculative_columns
from omni.tools import parse_tool_calls, tool_schemas

OUT_MODALITIES = ("text", "image", "audio", "auto")


@dataclass
class GenerationPlan:
    """One checked request batch, ready to decode."""

    options: GenerationOptions
    batch: OmniBatch
    decoder: Decoder
    speculative: bool
    voice: Any
    policy: SpeculationPolicy | None = None
    tools: list[list[dict[str, Any]]] = field(default_factory=list)  # per row; [] for none
    started: float = field(default_factory=time.perf_counter)

    def columns(self) -> Iterator[Column]:
        """The decoding loop's token columns (plain, or MTP-speculative)."""
        if self.speculative:
            return speculative_columns(self.decoder, self.batch, self.policy)
        return self.decoder.columns(self.batch)


def plan(
    pipe: Any, requests: list[Any], out_modality: str, kwargs: dict[str, Any]
) -> GenerationPlan:
    """Check the options, the voice and the inputs, and build the batch and its decoder."""
    options = GenerationOptions.from_kwargs(kwargs)
    if out_modality not in OUT_MODALITIES:
        raise ValueError(f"out_modality must be one of {OUT_MODALITIES}, got {out_modality!r}")
    if out_modality in ("image", "audio") and out_modality not in pipe.decoders:
        raise ValueError(
            f"this model has no {out_modality} decoder, so it cannot answer with {out_modality}"
        )
    constraint = OutputConstraint(pipe.layout, out_modality, think=options.think)
    if options.max_new_tokens < constraint.min_tokens():
        raise ValueError(
            f"max_new_tokens={options.max_new_tokens} is too small to close a {out_modality} "
            f"answer: it needs at least {constraint.min_tokens()} tokens"
        )
    speculative = options.speculative
    if speculative is None:
        speculative = speculates_by_default(pipe.model, out_modality) and not options.compiled
    elif speculative and not supports_speculation(pipe.model):
        raise ValueError("speculative=True needs a model with an MTP module")
    if options.draft_tokens is not None and not (speculative and supports_speculation(pipe.model)):
        raise ValueError(
            "draft_tokens needs speculative decoding, and a model with an MTP module to draft with"
        )
    voice = None
    if out_modality in ("audio", "auto") and "audio" in pipe.decoders:
        voice = resolve_voice(options.voice, pipe.decoders["audio"])
    samples = [to_sample(r, options.sample_rate) for r in requests]
    if options.tools is not None:
        schemas = tool_schemas(list(options.tools))
        samples = [dataclasses.replace(s, tools=schemas) for s in samples]
    tools = [tool_schemas(s.tools) for s in samples]
    batch = pipe.processor(
        samples, padding_side="left", add_generation_prompt=True, think=options.think
    )
    decoder = Decoder(
        pipe.model,
        [constraint] * len(samples),
        options.sampling(),
        options.max_new_tokens,
        compiled=options.compiled,
    )
    speculative = bool(speculative)
    # The drafts' recent acceptance is the model's, per output modality, so it carries over
    # requests: a short answer then pays no fresh window of rejected drafts. A seeded request
    # starts afresh, since where it drafts decides its random draws and so its sample, and so
    # does one that fixes its chain depth.
    policy = None
    if speculative and (options.seed is not None or options.draft_tokens is not None):
        policy = SpeculationPolicy(depth=options.draft_tokens)
    elif speculative:
        policy = pipe.speculation.setdefault(out_modality, SpeculationPolicy())
    return GenerationPlan(options, batch, decoder, speculative, voice, policy, tools)


def resolve_voice(voice: Any, vocoder: Any) -> Any:
    """A voice name, a reference clip (path or ``(sample_rate, wave)``) or an embedding ->
    what the vocoder synthesises with, checked now rather than after decoding.

    A string is a clip only when it names an existing file; one that looks like a file name
    (it has a suffix or a folder) but names none is a missing file, not an unknown voice."""
    if voice is None:  # the vocoder's first named voice
        return None
    if isinstance(voice, (str, Path)):
        path = Path(voice)
        if path.is_file():
            wave, rate = read_audio(path)
            voice = (rate, wave)
        elif isinstance(voice, Path) or path.suffix or len(path.parts) > 1:
            raise ValueError(f"no such file: {voice} (given as the voice's reference clip)")
    resolve = getattr(vocoder, "speaker_vector", None)
    if resolve is None:  # a decoder without voices (EnCodec) ignores the option
        return voice
    # Names are looked up, clips embedded and embeddings checked once, before decoding.
    return resolve(voice)


def split_thinking(answer: list[int], layout: Any, think: bool) -> tuple[list[int], list[int]]:
    """An answer's ids -> (answer ids, reasoning ids): what lies in a think block is
    reasoning; with ``think`` the answer starts inside one (the prompt opened it)."""
    opening, closing = layout.special_id("<think>"), layout.special_id("</think>")
    inside, said, reasoning = think, [], []
    for token in answer:
        if token in (opening, closing):
            inside = token == opening
        else:
            (reasoning if inside else said).append(token)
    return said, reasoning


def answer_text(pipe: Any, answer: list[int], think: bool) -> str:
    """The text of an answer, reasoning left out."""
    return text_of(pipe, split_thinking(answer, pipe.layout, think)[0])


def text_of(pipe: Any, ids: list[int]) -> str:
    text_ids = [t for t in ids if t < pipe.layout.text_size]
    return pipe.tokenizer.decode(text_ids, skip_special_tokens=True)


def finish(
    pipe: Any, answer: list[int], stats: DecodeStats, plan: GenerationPlan, row: int = 0
) -> GenerationResult:
    """The result of one decoded answer (row ``row`` of the batch): text, reasoning, tool
    calls, decoded media, timings and usage."""
    said, reasoning = split_thinking(answer, pipe.layout, plan.options.think)
    result = GenerationResult(
        text=text_of(pipe, said), thinking=text_of(pipe, reasoning), tokens=list(answer)
    )
    if plan.tools and plan.tools[row]:
        result.text, result.tool_calls = parse_tool_calls(result.text, plan.tools[row])
    decode_start = time.perf_counter()
    for block in BlockCodec(pipe.layout).blocks(answer):
        if isinstance(block, ImageBlock) and "image" in pipe.decoders:
            options = plan.options.image_options()
            image = pipe.decoders["image"].decode(block.codes, ratio=block.ratio, **options)
            result.images.append(image)
        elif isinstance(block, AudioBlock) and "audio" in pipe.decoders and block.units.numel():
            result.audios.append(pipe.decoders["audio"].decode(block.units, speaker=plan.voice))
    result.image = result.images[0] if result.images else None
    result.audio = result.audios[0] if result.audios else None
    finished = time.perf_counter()
    result.timings = {
        "prefill_s": stats.prefill_s,
        "decode_s": stats.decode_s,
        "media_decode_s": finished - decode_start,
        "total_s": finished - plan.started,
    }
    result.usage = {
        "prompt_tokens": stats.prompt_tokens,
        "new_tokens": len(answer),
        "forwards": stats.forwards,
        "drafts": stats.drafts,
        "accepted_drafts": stats.accepted,
        "acceptance_rate": stats.acceptance_rate,
        "paused_draft_steps": stats.paused_steps,
        # index d: drafts made at depth d + 1 of a chain, how many were accepted, their rate
        "drafts_by_depth": list(stats.depth_drafts),
        "accepted_by_depth": list(stats.depth_accepted),
        "acceptance_by_depth": stats.depth_acceptance,
    }
    return result
