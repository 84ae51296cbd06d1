"""The discrete image and audio blocks of a sequence, written, read and constrained in one place.

The grammar (the layout HyperCLOVA X Omni uses)::

    image: <|dimg_start|> <|ratio_r|> (code x cols <|dimg_eol|>) x rows <|dimg_eoi|> <|dimg_end|>
    audio: <|daud_start|> unit+ <|daud_end|>

``BlockCodec`` encodes code grids and unit sequences into these id runs (the processor), parses
complete blocks back out of an answer (the pipeline), and says, position by position, which kind
of id comes next inside an open block (the output constraints). Each of them reads the grammar
from here, so the three agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from omni.common.ratios import ratio_token
from omni.vocab import VocabLayout

# What may come next inside a block: a marker's special-token name, or one of these classes.
RATIO, IMAGE_CODE, AUDIO_UNIT, AUDIO_UNIT_OR_END = "ratio", "image", "audio", "audio_or_end"


@dataclass
class ImageBlock:
    """A complete image block: its ``[rows, cols]`` code grid and its aspect-ratio name."""

    codes: torch.Tensor
    ratio: str


@dataclass
class AudioBlock:
    """A complete audio block: its ``[frames]`` speech units."""

    units: torch.Tensor


class BlockCodec:
    """Image/audio block grammar over one vocabulary layout."""

    def __init__(self, layout: VocabLayout) -> None:
        self.layout = layout
        self.rows, self.cols = layout.image_grid
        self.image_start = layout.special_id("<|dimg_start|>")
        self.image_end = layout.special_id("<|dimg_end|>")
        self.audio_start = layout.special_id("<|daud_start|>")
        self.audio_end = layout.special_id("<|daud_end|>")
        self.ratios = {layout.ratio_id(r): r for r in layout.aspect_ratios}
        self.closer = {self.image_start: self.image_end, self.audio_start: self.audio_end}
        self.kind = {self.image_start: "image", self.audio_start: "audio"}

    # --- sizes ---------------------------------------------------------------------------
    @property
    def image_body_length(self) -> int:
        """Ids between ``<|dimg_start|>`` and ``<|dimg_end|>``: ratio, rows with eol, eoi."""
        return 1 + self.rows * (self.cols + 1) + 1

    @property
    def image_block_length(self) -> int:
        """Ids of a whole image block, both markers included."""
        return self.image_body_length + 2

    # --- encoding ------------------------------------------------------------------------
    def encode_image(self, codes: Any, ratio: str = "1:1") -> list[int]:
        """A ``[rows, cols]`` code grid -> the ids of its block."""
        codes = torch.as_tensor(codes, dtype=torch.long)
        if codes.dim() != 2 or tuple(codes.shape) != (self.rows, self.cols):
            raise ValueError(
                f"image codes must be a {self.rows}x{self.cols} grid, got shape "
                f"{tuple(codes.shape)}"
            )
        eol = self.layout.special_id("<|dimg_eol|>")
        ids = [self.image_start, self.layout.ratio_id(ratio)]
        for row in self.layout.codes_to_ids("image", codes):
            ids += [*row.tolist(), eol]
        return ids + [self.layout.special_id("<|dimg_eoi|>"), self.image_end]

    def encode_audio(self, units: Any) -> list[int]:
        """A ``[frames]`` unit sequence -> the ids of its block."""
        units = torch.as_tensor(units, dtype=torch.long)
        if units.dim() != 1 or units.numel() == 0:
            raise ValueError(
                f"audio codes must be a non-empty 1-D sequence, got {tuple(units.shape)}"
            )
        return [
            self.audio_start,
            *self.layout.codes_to_ids("audio", units).tolist(),
            self.audio_end,
        ]

    # --- the grammar ---------------------------------------------------------------------
    def image_next(self, body_length: int) -> str:
        """What the id after ``body_length`` ids of an open image block must be."""
        if body_length == 0:
            return RATIO
        step = body_length - 1
        if step < self.rows * (self.cols + 1):
            return "<|dimg_eol|>" if step % (self.cols + 1) == self.cols else IMAGE_CODE
        return "<|dimg_eoi|>" if step == self.rows * (self.cols + 1) else "<|dimg_end|>"

    @staticmethod
    def audio_next(body_length: int, min_units: int = 1) -> str:
        """What may follow ``body_length`` units of an open audio block."""
        return AUDIO_UNIT if body_length < min_units else AUDIO_UNIT_OR_END

    def open_block(self, answer: list[int]) -> tuple[str, list[int]] | None:
        """The unfinished block at the end of ``answer``: (kind, the ids after its start)."""
        for index in range(len(answer) - 1, -1, -1):
            token = answer[index]
            if token in self.closer:
                body = answer[index + 1 :]
                return None if self.closer[token] in body else (self.kind[token], body)
            if token in (self.image_end, self.audio_end):
                return None
        return None

    # --- parsing -------------------------------------------------------------------------
    def blocks(self, answer: list[int]) -> Iterator[ImageBlock | AudioBlock]:
        """The complete blocks of ``answer`` in order; an unclosed last block is left out."""
        index = 0
        while index < len(answer):
            token = answer[index]
            if token in self.closer:
                if self.closer[token] not in answer[index + 1 :]:
                    return
                end = answer.index(self.closer[token], index + 1)
                body = answer[index + 1 : end]
                yield (
                    self.parse_image(body) if token == self.image_start else self.parse_audio(body)
                )
                index = end
            index += 1

    def parse_image(self, body: list[int]) -> ImageBlock:
        """The ids between the image markers -> its code grid and ratio; checks the grammar."""
        wrong = len(body) != self.image_body_length
        if not wrong:
            wrong = any(self._kind_of(t) != self.image_next(i) for i, t in enumerate(body))
        if wrong:
            raise ValueError(
                f"malformed image block of {len(body)} ids: expected a ratio token, "
                f"{self.rows} rows of {self.cols} codes each ended by <|dimg_eol|>, then <|dimg_eoi|>"
            )
        codes = [t for t in body if self._kind_of(t) == IMAGE_CODE]
        grid = self.layout.ids_to_codes("image", torch.tensor(codes))
        return ImageBlock(grid.reshape(self.rows, self.cols), self.ratios[body[0]])

    def parse_audio(self, body: list[int]) -> AudioBlock:
        """The ids between the audio markers -> its units (all must be audio ids)."""
        return AudioBlock(self.layout.ids_to_codes("audio", torch.tensor(body, dtype=torch.long)))

    def _kind_of(self, token: int) -> str:
        if token in self.ratios:
            return RATIO
        modality, _ = self.layout.lookup(token)
        return self.layout.special_name(token) if modality == "special" else modality

    def ratio_names(self) -> list[str]:
        """The ratio tokens of this vocabulary, as special-token names."""
        return [ratio_token(r) for r in self.ratios.values()]
