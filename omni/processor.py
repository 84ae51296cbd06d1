"""Samples -> ``input_ids``, ``labels``, masks, positions and the media for continuous slots.

The chat template, in ids::

    <|system|> text <|endofturn|>
    <|user|> segments <|endofturn|>
    <|assistant|> [<think> reasoning </think>] segments <|endofturn|>

A continuous image is ``<|image_start|> <|image_pad|> x N <|image_end|>`` where N is what the
image encoder says one image fills; its preprocessed pixels go to ``media["image"]`` in
sequence order, and the model scatters the encoder output into the pad positions. A discrete
image is ``<|dimg_start|> <|ratio_r|> (row codes <|dimg_eol|>) x rows <|dimg_eoi|> <|dimg_end|>``,
the layout HyperCLOVA X Omni uses; discrete audio is ``<|daud_start|> units <|daud_end|>``.
A video is ``<|video_start|>`` then, per sampled frame, its timestamp as text and the frame's
slots, then ``<|video_end|>``. A sample's tools come first, as a system turn of their own;
tool calls and results are text written by ``omni.tools`` (a run of them tokenized as one
string, as the chat template renders it), and a ``tool`` turn has the ``<|user|>`` marker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import torch

from omni.blocks import BlockCodec
from omni.chat_template import text_block_size
from omni.sequence import Audio, Image, Sample, Segment, Text, ToolCall, ToolResult, Turn, Video
from omni.tools import TOOL_TURN_MARKER, render_call, render_result, render_tools, tool_schemas
from omni.vocab import PLACEHOLDERS, VocabLayout

IGNORE_INDEX = -100
LOSS_POLICIES = ("assistant", "all", "none")


@dataclass
class EncodedSample:
    """One sample in ids, before batching."""

    input_ids: list[int]
    labels: list[int]
    media: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class OmniBatch:
    """A model-ready batch. ``attention_mask`` is None for packed rows: the backbone then
    derives a block-diagonal causal mask from the per-sample ``position_ids``."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor
    media: dict[str, list[Any]] = field(default_factory=dict)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for ``OmniForConditionalGeneration.forward``."""
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "attention_mask": self.attention_mask,
            "position_ids": self.position_ids,
            "media": self.media,
        }

    def to(self, device: torch.device | str) -> OmniBatch:
        def move(item: Any) -> Any:
            return item.to(device) if hasattr(item, "to") else item

        mask = None if self.attention_mask is None else self.attention_mask.to(device)
        media = {k: [move(v) for v in items] for k, items in self.media.items()}
        return OmniBatch(
            self.input_ids.to(device),
            self.labels.to(device),
            mask,
            self.position_ids.to(device),
            media,
        )


class OmniProcessor:
    """Builds the interleaved sequence for a model's vocabulary, encoders and tokenizers.

    ``encoders`` maps ``image`` / ``audio`` / ``video`` to objects with ``preprocess`` and
    ``num_tokens`` (the model's continuous encoders); ``code_tokenizers`` maps ``image`` /
    ``audio`` to discrete tokenizers with ``encode``. Any of them may be missing: a sample
    that needs a missing one is a ``ValueError`` that says which.
    """

    def __init__(
        self,
        tokenizer: Any,
        layout: VocabLayout,
        encoders: dict[str, Any] | None = None,
        code_tokenizers: dict[str, Any] | None = None,
        max_length: int | None = None,
    ) -> None:
        text_size = text_block_size(tokenizer, layout)  # without Omni's specials, if attached
        if text_size != layout.text_size:
            raise ValueError(
                f"the text tokenizer has {text_size} tokens but the vocabulary layout "
                f"expects {layout.text_size}: they come from different models"
            )
        self.tokenizer = tokenizer
        self.layout = layout
        self.encoders = dict(encoders or {})
        self.code_tokenizers = dict(code_tokenizers or {})
        self.max_length = max_length
        self.blocks = BlockCodec(layout)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any) -> OmniProcessor:
        """The processor that matches ``model``'s layout, encoders and tokenizers."""
        return cls(
            tokenizer,
            model.layout,
            encoders=model.continuous_encoders(),
            code_tokenizers=getattr(model, "code_tokenizers", {}),
            max_length=model.max_length,
        )

    # --- one sample ----------------------------------------------------------------------
    def encode(
        self,
        sample: Sample | list[Turn],
        loss_on: str = "assistant",
        add_generation_prompt: bool = False,
        think: bool = False,
    ) -> EncodedSample:
        """Ids, labels and media of one sample; labels are ``IGNORE_INDEX`` where no loss."""
        if loss_on not in LOSS_POLICIES:
            raise ValueError(f"unknown loss policy {loss_on!r}; expected one of {LOSS_POLICIES}")
        turns = sample.turns if isinstance(sample, Sample) else sample
        out = EncodedSample([], [], {})
        if isinstance(sample, Sample) and sample.tools:
            tools_text = Text(render_tools(tool_schemas(sample.tools)))
            turns = [Turn("system", [tools_text]), *turns]
        for turn in turns:
            if not isinstance(turn, Turn):
                raise ValueError(f"a sample is a list of Turn objects, got {type(turn).__name__}")
            trained = turn.loss if turn.loss is not None else self._default_loss(turn, loss_on)
            marker = TOOL_TURN_MARKER if turn.role == "tool" else turn.role
            self._append(out, [self.layout.role_id(marker)], False)
            if turn.think is not None:
                ids = [self.layout.special_id("<think>"), *self._text_ids(turn.think)]
                self._append(out, [*ids, self.layout.special_id("</think>")], trained)
            for is_tool, run in groupby(turn.segments, key=_is_tool_segment):
                if is_tool:
                    self._append(out, self._text_ids("".join(map(_tool_text, run))), trained)
                    continue
                for segment in run:
                    self._encode_segment(out, segment, turn.role, trained)
            self._append(out, [self.layout.special_id("<|endofturn|>")], trained)
        if add_generation_prompt:
            self._append(out, [self.layout.role_id("assistant")], False)
            if think:
                self._append(out, [self.layout.special_id("<think>")], False)
        if self.max_length is not None and len(out) > self.max_length:
            raise ValueError(
                f"the sample is {len(out)} tokens long, over the model's maximum length of "
                f"{self.max_length}: shorten it or use fewer/lower-budget media"
            )
        return out

    def __call__(
        self,
        samples: list[Sample] | Sample,
        padding_side: str = "right",
        loss_on: str = "assistant",
        add_generation_prompt: bool = False,
        think: bool = False,
    ) -> OmniBatch:
        """Encode and pad a batch: right padding for training, left padding for generation."""
        if isinstance(samples, Sample):
            samples = [samples]
        encoded = [self.encode(s, loss_on, add_generation_prompt, think) for s in samples]
        return self.collate(encoded, padding_side)

    @staticmethod
    def _default_loss(turn: Turn, loss_on: str) -> bool:
        return loss_on == "all" or (loss_on == "assistant" and turn.role == "assistant")

    @staticmethod
    def _append(out: EncodedSample, ids: list[int], trained: bool) -> None:
        out.input_ids.extend(ids)
        out.labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))

    def _text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _encode_segment(self, out: EncodedSample, segment: Segment, role: str, trained: bool):
        if isinstance(segment, Text):
            self._append(out, self._text_ids(segment.text), trained)
            return
        if isinstance(segment, Video):
            self._encode_video(out, segment)
            return
        if not isinstance(segment, (Image, Audio)):
            raise ValueError(f"unknown segment type {type(segment).__name__}")
        modality = "image" if isinstance(segment, Image) else "audio"
        mode = segment.mode or ("discrete" if role == "assistant" else "continuous")
        if mode in ("continuous", "both"):
            self._encode_continuous(out, modality, segment.source)
        if mode in ("discrete", "both"):
            self._encode_discrete(out, modality, segment, trained)

    def _encoder(self, modality: str) -> Any:
        if modality not in self.encoders:
            raise ValueError(
                f"this model has no {modality} encoder, so it cannot take {modality} input "
                f"as continuous embeddings"
            )
        return self.encoders[modality]

    def _encode_continuous(self, out: EncodedSample, modality: str, source: Any) -> None:
        if source is None:
            raise ValueError(f"a continuous {modality} segment needs a source, not only codes")
        encoder = self._encoder(modality)
        item = encoder.preprocess(source)
        count = encoder.num_tokens(item)
        start, pad, end = (f"<|{modality}_start|>", PLACEHOLDERS[modality], f"<|{modality}_end|>")
        ids = [self.layout.special_id(start)]
        ids += [self.layout.special_id(pad)] * count
        self._append(out, [*ids, self.layout.special_id(end)], False)
        out.media.setdefault(modality, []).append(item)

    def _encode_video(self, out: EncodedSample, segment: Video) -> None:
        encoder = self._encoder("video")
        clip = encoder.preprocess(segment.source)
        per_frame = encoder.num_tokens(clip) // len(clip.timestamps)
        pad = self.layout.special_id(PLACEHOLDERS["video"])
        self._append(out, [self.layout.special_id("<|video_start|>")], False)
        for timestamp in clip.timestamps:
            self._append(out, self._text_ids(f"{timestamp:.1f}s"), False)
            self._append(out, [pad] * per_frame, False)
        self._append(out, [self.layout.special_id("<|video_end|>")], False)
        out.media.setdefault("video", []).append(clip)

    def _encode_discrete(self, out: EncodedSample, modality: str, segment: Any, trained: bool):
        codes = segment.codes
        if codes is None:
            tokenizer = self.code_tokenizers.get(modality)
            if tokenizer is None:
                raise ValueError(
                    f"this model has no {modality} tokenizer, so a {modality} segment without "
                    f"precomputed codes cannot be a discrete target"
                )
            if modality == "audio":
                from omni.inputs import read_audio

                wave, rate = read_audio(segment.source)
                codes = tokenizer.encode(wave, sample_rate=rate)
            else:
                codes = tokenizer.encode(segment.source)
        codes = torch.as_tensor(codes, dtype=torch.long)
        self._append(
            out, self.discrete_ids(modality, codes, getattr(segment, "ratio", "1:1")), trained
        )

    def discrete_ids(self, modality: str, codes: torch.Tensor, ratio: str = "1:1") -> list[int]:
        """The marker-framed id run of an image code grid or an audio unit sequence."""
        if modality == "audio":
            return self.blocks.encode_audio(codes)
        return self.blocks.encode_image(codes, ratio)

    # --- batching ------------------------------------------------------------------------
    def collate(self, encoded: list[EncodedSample], padding_side: str = "right") -> OmniBatch:
        """Pad to the longest sample; positions count real tokens only."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if not encoded:
            raise ValueError("cannot collate an empty batch")
        width = max(len(e) for e in encoded)
        pad = self.layout.special_id("<|pad|>")
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        labels = torch.full_like(ids, IGNORE_INDEX)
        mask = torch.zeros_like(ids)
        for row, sample in enumerate(encoded):
            n = len(sample)
            span = slice(width - n, width) if padding_side == "left" else slice(0, n)
            ids[row, span] = torch.tensor(sample.input_ids, dtype=torch.long)
            labels[row, span] = torch.tensor(sample.labels, dtype=torch.long)
            mask[row, span] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return OmniBatch(ids, labels, mask, positions, _merge_media(encoded))

    def pack(self, encoded: list[EncodedSample], row_length: int) -> OmniBatch:
        """First-fit packing of samples into rows of ``row_length`` tokens.

        Positions restart at 0 for every sample, and the batch has no attention mask, so the
        backbone builds a block-diagonal causal mask: no token attends across samples. The
        first label of every sample is ignored so no sample is trained to follow another.
        """
        rows: list[list[EncodedSample]] = []
        room: list[int] = []
        for sample in sorted(encoded, key=len, reverse=True):
            if len(sample) > row_length:
                raise ValueError(
                    f"a sample of {len(sample)} tokens does not fit a packed row of {row_length}"
                )
            slot = next((i for i, free in enumerate(room) if free >= len(sample)), None)
            if slot is None:
                rows.append([])
                room.append(row_length)
                slot = len(rows) - 1
            rows[slot].append(sample)
            room[slot] -= len(sample)
        pad = self.layout.special_id("<|pad|>")
        ids = torch.full((len(rows), row_length), pad, dtype=torch.long)
        labels = torch.full_like(ids, IGNORE_INDEX)
        positions = torch.zeros_like(ids)
        for r, row in enumerate(rows):
            cursor = 0
            for sample in row:
                n = len(sample)
                ids[r, cursor : cursor + n] = torch.tensor(sample.input_ids)
                labels[r, cursor + 1 : cursor + n] = torch.tensor(sample.labels[1:])
                positions[r, cursor : cursor + n] = torch.arange(n)
                cursor += n
            positions[r, cursor:] = torch.arange(row_length - cursor)
        ordered = [sample for row in rows for sample in row]
        return OmniBatch(ids, labels, None, positions, _merge_media(ordered))


def _is_tool_segment(segment: Segment) -> bool:
    return isinstance(segment, (ToolCall, ToolResult))


def _tool_text(segment: ToolCall | ToolResult) -> str:
    if isinstance(segment, ToolCall):
        return render_call(segment.name, segment.arguments)
    return render_result(segment.content)


def _merge_media(encoded: list[EncodedSample]) -> dict[str, list[Any]]:
    media: dict[str, list[Any]] = {}
    for sample in encoded:
        for modality, items in sample.media.items():
            media.setdefault(modality, []).extend(items)
    return media


def packing_ratio(batch: OmniBatch, pad_id: int) -> float:
    """Share of real (non-pad) tokens in a batch."""
    return float((batch.input_ids != pad_id).float().mean())
