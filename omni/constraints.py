"""Step-by-step output constraints: which ids may come next in a text, image or audio answer.

The vocabulary's static masks say which blocks an answer may use; these small state machines
add the structure (the block grammar of ``omni.blocks``), so ``out_modality="image"`` can only
produce one well-formed image block then ``<|endofturn|>``, and ``"audio"`` only one audio
block. With ``think=True`` the answer starts inside a ``<think>`` block (the prompt opened it):
reasoning text comes first and ``</think>`` closes it before any media block opens. Each
constraint reads the ids generated so far, so it is stateless between calls and works for
every row of a batch.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from omni.blocks import AUDIO_UNIT, AUDIO_UNIT_OR_END, IMAGE_CODE, RATIO, BlockCodec
from omni.vocab import OUTPUT_MODALITIES, VocabLayout

MARKERS = ("<|pad|>", "<|endofturn|>", "<|dimg_start|>", "<|daud_start|>", "<|dimg_eol|>")
MARKERS += ("<|dimg_eoi|>", "<|dimg_end|>", "<|daud_end|>", "</think>")


class OutputConstraint:
    """Allowed next ids for one output modality, given the answer generated so far.

    ``auto`` lets the model write text and open any number of image or audio blocks; inside
    a block the block's own structure applies.
    """

    def __init__(
        self, layout: VocabLayout, modality: str, min_units: int = 1, think: bool = False
    ) -> None:
        if modality not in (*OUTPUT_MODALITIES, "auto"):
            raise ValueError(
                f"unknown output modality {modality!r}; expected one of "
                f"{(*OUTPUT_MODALITIES, 'auto')}"
            )
        self.layout = layout
        self.codec = BlockCodec(layout)
        self.modality = modality
        self.min_units = min_units
        self.think = think
        self.end_turn = layout.special_id("<|endofturn|>")
        self.end_think = layout.special_id("</think>")
        self._text = layout.output_mask("text")
        self._auto = self._text | layout.mask("<|dimg_start|>", "<|daud_start|>")
        self._auto_no_image = self._auto & ~layout.mask("<|dimg_start|>")
        self._reasoning = layout.mask("text", "</think>")
        # One mask per symbol of the block grammar, built once: decoding asks every step.
        self._next = {name: layout.mask(name) for name in MARKERS}
        self._next[RATIO] = layout.mask(*self.codec.ratio_names())
        self._next[IMAGE_CODE] = layout.mask("image")
        self._next[AUDIO_UNIT] = layout.mask("audio")
        self._next[AUDIO_UNIT_OR_END] = layout.mask("audio", "<|daud_end|>")

    def min_tokens(self) -> int:
        """Fewest tokens a complete answer of this modality takes (markers included)."""
        closing_think = 1 if self.think else 0
        if self.modality == "image":
            return closing_think + self.codec.image_block_length + 1
        if self.modality == "audio":
            return closing_think + 2 + self.min_units + 1
        return 1

    def allowed(self, answer: list[int], remaining: int | None = None) -> torch.Tensor:
        """Boolean mask over the vocabulary for the token after ``answer``.

        ``remaining`` (tokens left in the budget, this one included) makes the answer close
        in time: a think block closes while the media block still fits, an audio block ends
        when only its end markers still fit, and no image block opens that could not finish.
        """
        if self.end_turn in answer:
            return self._next["<|pad|>"]  # finished: only padding follows
        if self.think and self.modality != "text":
            if self.end_think not in answer:
                return self._reasoning_next(remaining)
            answer = answer[answer.index(self.end_think) + 1 :]
        block = self.codec.open_block(answer)
        if block is not None:
            kind, body = block
            if kind == "audio" and remaining is not None and remaining <= 2:
                if len(body) >= self.min_units:
                    return self._next["<|daud_end|>"]
            if kind == "image":
                return self._next[self.codec.image_next(len(body))]
            return self._next[self.codec.audio_next(len(body), self.min_units)]
        if self.modality == "text":
            return self._text
        if self.modality == "auto":
            if remaining is not None and remaining < self.codec.image_block_length + 2:
                return self._auto_no_image
            return self._auto
        if answer:  # the one block of an image/audio answer is closed: end the turn
            return self._next["<|endofturn|>"]
        return self._next["<|dimg_start|>" if self.modality == "image" else "<|daud_start|>"]

    def _reasoning_next(self, remaining: int | None) -> torch.Tensor:
        """Inside the think block: reasoning text, or ``</think>``; forced once the rest of
        the answer would no longer fit."""
        rest = 1 if self.modality == "auto" else self.min_tokens() - 1
        if remaining is not None and remaining <= rest + 1:
            return self._next["</think>"]
        return self._reasoning


class ConstrainedLogits(LogitsProcessor):
    """A transformers ``LogitsProcessor`` applying an ``OutputConstraint`` to every row.

    ``prompt_length`` is where the answer starts in ``input_ids`` (the padded prompt width);
    ``max_new_tokens``, when given, lets the constraint close a block within the budget, as
    omni's own decoding loop does.
    """

    def __init__(
        self, constraint: OutputConstraint, prompt_length: int, max_new_tokens: int | None = None
    ) -> None:
        self.constraint = constraint
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        answers = [row[self.prompt_length :].tolist() for row in input_ids]
        budget = self.max_new_tokens
        masks = torch.stack(
            [
                self.constraint.allowed(a, None if budget is None else budget - len(a))
                for a in answers
            ]
        ).to(scores.device)
        vocab = min(scores.shape[-1], masks.shape[-1])
        constrained = torch.full_like(scores, float("-inf"))
        constrained[:, :vocab] = scores[:, :vocab].masked_fill(~masks[:, :vocab], float("-inf"))
        return constrained
