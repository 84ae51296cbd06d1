"""Step-by-step output constraints: which ids may come next in a text, image or audio answer.

The vocabulary's static masks say which blocks an answer may use; these small state machines
add the structure, so ``out_modality="image"`` can only produce one well-formed block::

    <|dimg_start|> <|ratio_r|> (code x cols <|dimg_eol|>) x rows <|dimg_eoi|> <|dimg_end|> <|endofturn|>

and ``"audio"`` only ``<|daud_start|> unit+ <|daud_end|> <|endofturn|>``. Each constraint reads
the ids generated so far, so it is stateless between calls and works for every row of a batch.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from omni.vocab import ASPECT_RATIOS, OUTPUT_MODALITIES, VocabLayout


class OutputConstraint:
    """Allowed next ids for one output modality, given the answer generated so far."""

    def __init__(self, layout: VocabLayout, modality: str, min_units: int = 1) -> None:
        if modality not in OUTPUT_MODALITIES:
            raise ValueError(
                f"unknown output modality {modality!r}; expected one of {OUTPUT_MODALITIES}"
            )
        self.layout = layout
        self.modality = modality
        self.min_units = min_units
        self.end_turn = layout.special_id("<|endofturn|>")
        self._text = layout.output_mask("text")
        self._image_codes = layout.mask("image")
        self._audio_codes = layout.mask("audio")

    def min_tokens(self) -> int:
        """Fewest tokens a complete answer of this modality takes (markers included)."""
        if self.modality == "image":
            rows, cols = self.layout.image_grid
            return 2 + rows * (cols + 1) + 3
        if self.modality == "audio":
            return 2 + self.min_units + 1
        return 1

    def allowed(self, answer: list[int]) -> torch.Tensor:
        """Boolean mask over the vocabulary for the token after ``answer``."""
        if answer and answer[-1] == self.end_turn:
            return self.layout.mask("<|pad|>")  # finished: only padding follows
        if self.modality == "text":
            return self._text
        if self.modality == "image":
            return self._image_next(answer)
        return self._audio_next(answer)

    def _image_next(self, answer: list[int]) -> torch.Tensor:
        layout = self.layout
        rows, cols = layout.image_grid
        step = len(answer)
        if step == 0:
            return layout.mask("<|dimg_start|>")
        if step == 1:
            return layout.mask(*(f"<|ratio_{r}|>" for r in ASPECT_RATIOS))
        body = step - 2
        if body < rows * (cols + 1):
            return layout.mask("<|dimg_eol|>") if body % (cols + 1) == cols else self._image_codes
        after = body - rows * (cols + 1)
        names = ("<|dimg_eoi|>", "<|dimg_end|>", "<|endofturn|>")
        return layout.mask(names[min(after, 2)])

    def _audio_next(self, answer: list[int]) -> torch.Tensor:
        layout = self.layout
        if not answer:
            return layout.mask("<|daud_start|>")
        if answer[-1] == layout.special_id("<|daud_end|>"):
            return layout.mask("<|endofturn|>")
        units = len(answer) - 1
        if units < self.min_units:
            return self._audio_codes
        return self._audio_codes | layout.mask("<|daud_end|>")


class ConstrainedLogits(LogitsProcessor):
    """A transformers ``LogitsProcessor`` applying an ``OutputConstraint`` to every row.

    ``prompt_length`` is where the answer starts in ``input_ids`` (the padded prompt width).
    """

    def __init__(self, constraint: OutputConstraint, prompt_length: int) -> None:
        self.constraint = constraint
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        masks = torch.stack(
            [self.constraint.allowed(row[self.prompt_length :].tolist()) for row in input_ids]
        ).to(scores.device)
        vocab = min(scores.shape[-1], masks.shape[-1])
        constrained = torch.full_like(scores, float("-inf"))
        constrained[:, :vocab] = scores[:, :vocab].masked_fill(~masks[:, :vocab], float("-inf"))
        return constrained
