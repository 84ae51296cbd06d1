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
    """Allowed next ids for one output modality, given the answer generated so far.

    ``auto`` lets the model write text and open any number of image or audio blocks; inside
    a block the block's own structure applies.
    """

    def __init__(self, layout: VocabLayout, modality: str, min_units: int = 1) -> None:
        if modality not in (*OUTPUT_MODALITIES, "auto"):
            raise ValueError(
                f"unknown output modality {modality!r}; expected one of "
                f"{(*OUTPUT_MODALITIES, 'auto')}"
            )
        self.layout = layout
        self.modality = modality
        self.min_units = min_units
        self.end_turn = layout.special_id("<|endofturn|>")
        self.opens = {
            layout.special_id("<|dimg_start|>"): ("image", layout.special_id("<|dimg_end|>")),
            layout.special_id("<|daud_start|>"): ("audio", layout.special_id("<|daud_end|>")),
        }
        self.closers = {closer for _, closer in self.opens.values()}
        self._text = layout.output_mask("text")
        self._auto = self._text | layout.mask("<|dimg_start|>", "<|daud_start|>")
        self._auto_no_image = self._auto & ~layout.mask("<|dimg_start|>")
        self._image_codes = layout.mask("image")
        self._audio_codes = layout.mask("audio")
        self._audio_or_end = self._audio_codes | layout.mask("<|daud_end|>")
        self._ratios = layout.mask(*(f"<|ratio_{r}|>" for r in ASPECT_RATIOS))
        # One mask per single allowed marker, built once: decoding asks for them every step.
        names = ("<|pad|>", "<|endofturn|>", "<|dimg_start|>", "<|daud_start|>", "<|dimg_eol|>")
        names += ("<|dimg_eoi|>", "<|dimg_end|>", "<|daud_end|>")
        self._only = {name: layout.mask(name) for name in names}

    def min_tokens(self) -> int:
        """Fewest tokens a complete answer of this modality takes (markers included)."""
        if self.modality == "image":
            rows, cols = self.layout.image_grid
            return 2 + rows * (cols + 1) + 3
        if self.modality == "audio":
            return 2 + self.min_units + 1
        return 1

    def allowed(self, answer: list[int], remaining: int | None = None) -> torch.Tensor:
        """Boolean mask over the vocabulary for the token after ``answer``.

        ``remaining`` (tokens left in the budget, this one included) makes the answer close
        in time: an audio block ends when only its end markers still fit, and no image block
        opens that could not be finished.
        """
        if self.end_turn in answer:
            return self._only["<|pad|>"]  # finished: only padding follows
        block = self._open_block(answer)
        if block is not None:
            kind, body = block
            if kind == "audio" and remaining is not None and remaining <= 2:
                if len(body) >= self.min_units:
                    return self._only["<|daud_end|>"]
            return self._image_next(body) if kind == "image" else self._audio_next(body)
        if self.modality == "text":
            return self._text
        if self.modality == "auto":
            rows, cols = self.layout.image_grid
            if remaining is not None and remaining < 3 + rows * (cols + 1) + 3:
                return self._auto_no_image
            return self._auto
        if answer:  # the one block of an image/audio answer is closed: end the turn
            return self._only["<|endofturn|>"]
        return self._only["<|dimg_start|>" if self.modality == "image" else "<|daud_start|>"]

    def _open_block(self, answer: list[int]) -> tuple[str, list[int]] | None:
        """The unfinished image/audio block at the end of ``answer``: (kind, ids after its start)."""
        for index in range(len(answer) - 1, -1, -1):
            token = answer[index]
            if token in self.opens:
                kind, closer = self.opens[token]
                body = answer[index + 1 :]
                return None if closer in body else (kind, body)
            if token in self.closers:
                return None
        return None

    def _image_next(self, body: list[int]) -> torch.Tensor:
        rows, cols = self.layout.image_grid
        if not body:
            return self._ratios
        step = len(body) - 1
        if step < rows * (cols + 1):
            return self._only["<|dimg_eol|>"] if step % (cols + 1) == cols else self._image_codes
        return self._only["<|dimg_eoi|>" if step == rows * (cols + 1) else "<|dimg_end|>"]

    def _audio_next(self, body: list[int]) -> torch.Tensor:
        return self._audio_codes if len(body) < self.min_units else self._audio_or_end


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
