"""The unified vocabulary: one id space for text, special tokens, image codes and audio codes.

The layout is plain data saved in the model's config. Every question about ids (which
modality is id 1234, where does the image block start, which ids may an image answer use) is
a pure function of it, so the LM head, the processor and constrained decoding agree by
construction.

    [ text (from the text tokenizer) | specials | image codes | audio codes | padding ]

A tokenizer that already holds a code block (the official HyperCLOVA X Omni tokenizer has
``<|vision0|>``... and ``<|audio0|>``... among its tokens) has that block described in place:
``image_start`` / ``audio_start`` give its first id inside the text block, nothing is appended
for it, and the text block's answers leave those ids out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from omni.common.ratios import ASPECT_RATIOS as RATIO_PROPORTIONS
from omni.common.ratios import ratio_token

MODALITIES = ("text", "special", "image", "audio")
OUTPUT_MODALITIES = ("text", "image", "audio")
ROLES = ("system", "user", "assistant")

# Aspect-ratio tokens: the image decoder reads the output size from the one in the sequence.
ASPECT_RATIOS = tuple(RATIO_PROPORTIONS)
# The first vocabulary had five ratio tokens before <|daud_start|>; later ones are appended at the
# end of SPECIAL_TOKENS, so the ids of every earlier token stay what saved checkpoints expect.
_FIRST_RATIOS = 5

# Fixed order: appending new names at the end keeps existing ids stable across versions.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|pad|>",
    "<|endoftext|>",
    *(f"<|{role}|>" for role in ROLES),
    "<|endofturn|>",
    "<think>",
    "</think>",
    # discrete image: <|dimg_start|> <|ratio_1:1|> row codes <|dimg_eol|> ... <|dimg_eoi|> <|dimg_end|>
    "<|dimg_start|>",
    "<|dimg_eol|>",
    "<|dimg_eoi|>",
    "<|dimg_end|>",
    *(ratio_token(ratio) for ratio in ASPECT_RATIOS[:_FIRST_RATIOS]),
    # discrete audio: <|daud_start|> units ... <|daud_end|>
    "<|daud_start|>",
    "<|daud_end|>",
    # continuous placeholders, each bracketed by start/end markers
    "<|image_start|>",
    "<|image_pad|>",
    "<|image_end|>",
    "<|audio_start|>",
    "<|audio_pad|>",
    "<|audio_end|>",
    "<|video_start|>",
    "<|video_pad|>",
    "<|video_end|>",
    *(ratio_token(ratio) for ratio in ASPECT_RATIOS[_FIRST_RATIOS:]),
)

PLACEHOLDERS = {"image": "<|image_pad|>", "audio": "<|audio_pad|>", "video": "<|video_pad|>"}


@dataclass(frozen=True)
class VocabLayout:
    """Offsets and sizes of each block of the unified vocabulary.

    ``text_size`` is the text tokenizer's length; ``image_codes`` / ``audio_codes`` are the
    codebook sizes of the discrete image and audio tokenizers. ``pad_to_multiple_of`` rounds
    the total up (unused rows) so embedding matrices have friendly shapes. ``image_start`` /
    ``audio_start`` (``None``: appended) place a code block in place inside the text block.
    """

    text_size: int
    image_codes: int
    audio_codes: int
    image_grid: tuple[int, int] = (8, 8)
    specials: tuple[str, ...] = field(default=SPECIAL_TOKENS)
    pad_to_multiple_of: int = 64
    image_start: int | None = None
    audio_start: int | None = None

    def __post_init__(self) -> None:
        for name in ("text_size", "image_codes", "audio_codes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VocabLayout.{name} must be positive, got {getattr(self, name)}")
        if len(set(self.specials)) != len(self.specials):
            raise ValueError("VocabLayout.specials has duplicate names")
        object.__setattr__(self, "specials", tuple(self.specials))
        object.__setattr__(self, "image_grid", tuple(self.image_grid))
        self._check_in_place()

    def _check_in_place(self) -> None:
        placed = [m for m in ("image", "audio") if getattr(self, f"{m}_start") is not None]
        for modality in placed:
            block = self.range_of(modality)
            if block.start < 0 or block.stop > self.text_size:
                raise ValueError(
                    f"the in-place {modality} block {block.start}..{block.stop - 1} must lie "
                    f"inside the text block 0..{self.text_size - 1}"
                )
        if len(placed) == 2 and set(self.range_of("image")) & set(self.range_of("audio")):
            raise ValueError("the in-place image and audio blocks overlap")

    # --- block offsets -------------------------------------------------------------------
    @property
    def special_offset(self) -> int:
        return self.text_size

    @property
    def image_offset(self) -> int:
        if self.image_start is not None:
            return self.image_start
        return self.special_offset + len(self.specials)

    @property
    def audio_offset(self) -> int:
        if self.audio_start is not None:
            return self.audio_start
        return self.special_offset + len(self.specials) + self._appended("image")

    @property
    def used_size(self) -> int:
        end = self.special_offset + len(self.specials)
        return end + self._appended("image") + self._appended("audio")

    def _appended(self, modality: str) -> int:
        """Rows appended for a code block: its size, or 0 when it lies in place."""
        if getattr(self, f"{modality}_start") is not None:
            return 0
        return self.image_codes if modality == "image" else self.audio_codes

    @property
    def in_place(self) -> tuple[str, ...]:
        """The code blocks described inside the text block rather than appended."""
        return tuple(m for m in ("image", "audio") if getattr(self, f"{m}_start") is not None)

    @property
    def total_size(self) -> int:
        multiple = max(1, self.pad_to_multiple_of)
        return -(-self.used_size // multiple) * multiple

    def range_of(self, modality: str) -> range:
        """The id range of one block: ``text``, ``special``, ``image`` or ``audio``."""
        starts = {
            "text": (0, self.text_size),
            "special": (self.special_offset, self.special_offset + len(self.specials)),
            "image": (self.image_offset, self.image_offset + self.image_codes),
            "audio": (self.audio_offset, self.audio_offset + self.audio_codes),
        }
        if modality not in starts:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        return range(*starts[modality])

    # --- id <-> (modality, code) ---------------------------------------------------------
    def special_id(self, name: str) -> int:
        try:
            return self.special_offset + self.specials.index(name)
        except ValueError:
            raise ValueError(f"unknown special token {name!r}") from None

    def role_id(self, role: str) -> int:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
        return self.special_id(f"<|{role}|>")

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        """The ratios this vocabulary has tokens for (older checkpoints have fewer)."""
        return tuple(r for r in ASPECT_RATIOS if ratio_token(r) in self.specials)

    def ratio_id(self, ratio: str) -> int:
        if ratio not in self.aspect_ratios:
            raise ValueError(
                f"unknown aspect ratio {ratio!r}; expected one of {self.aspect_ratios}"
            )
        return self.special_id(ratio_token(ratio))

    def token_id(self, modality: str, code: int) -> int:
        """Id of ``code`` in block ``modality`` (for ``special``, the index in ``specials``)."""
        block = self.range_of(modality)
        if not 0 <= code < len(block):
            raise ValueError(f"{modality} code {code} is outside 0..{len(block) - 1}")
        return block.start + code

    def lookup(self, token_id: int) -> tuple[str, int]:
        """``id -> (modality, code)``; the inverse of :meth:`token_id` (an in-place code id is
        a code, not text)."""
        for modality in ("special", "image", "audio", "text"):
            block = self.range_of(modality)
            if token_id in block:
                return modality, token_id - block.start
        raise ValueError(f"id {token_id} is outside the vocabulary (0..{self.used_size - 1})")

    def special_name(self, token_id: int) -> str:
        modality, code = self.lookup(token_id)
        if modality != "special":
            raise ValueError(f"id {token_id} is a {modality} token, not a special token")
        return self.specials[code]

    def codes_to_ids(self, modality: str, codes: torch.Tensor) -> torch.Tensor:
        """Vectorised :meth:`token_id` for a tensor of codes."""
        block = self.range_of(modality)
        codes = torch.as_tensor(codes, dtype=torch.long)
        if codes.numel() and (codes.min() < 0 or codes.max() >= len(block)):
            raise ValueError(
                f"{modality} codes must lie in 0..{len(block) - 1}, got "
                f"{int(codes.min())}..{int(codes.max())}"
            )
        return codes + block.start

    def ids_to_codes(self, modality: str, ids: torch.Tensor) -> torch.Tensor:
        """Vectorised inverse of :meth:`codes_to_ids`; every id must be in the block."""
        block = self.range_of(modality)
        ids = torch.as_tensor(ids, dtype=torch.long)
        inside = (ids >= block.start) & (ids < block.stop)
        if not bool(inside.all()):
            raise ValueError(f"ids outside the {modality} block {block.start}..{block.stop - 1}")
        return ids - block.start

    # --- output constraints --------------------------------------------------------------
    def mask(self, *allowed: str | int) -> torch.Tensor:
        """Boolean ``[total_size]`` mask: True for the blocks, special names and ids given
        (``text`` leaves out the code blocks that lie in place inside it)."""
        allowed_mask = torch.zeros(self.total_size, dtype=torch.bool)
        for item in allowed:
            if item in MODALITIES:
                allowed_mask |= self._block_mask(item)
            elif isinstance(item, str):
                allowed_mask[self.special_id(item)] = True
            else:
                allowed_mask[item] = True
        return allowed_mask

    def _block_mask(self, modality: str) -> torch.Tensor:
        block_mask = torch.zeros(self.total_size, dtype=torch.bool)
        block = self.range_of(modality)
        block_mask[block.start : block.stop] = True
        if modality == "text":
            for placed in self.in_place:
                codes = self.range_of(placed)
                block_mask[codes.start : codes.stop] = False
        return block_mask

    def output_mask(self, modality: str) -> torch.Tensor:
        """Ids an answer of ``modality`` may contain anywhere in its body.

        Structure inside blocks (rows of exactly ``image_grid[1]`` codes, markers in the
        right places) is enforced step by step by the generation constraints; this mask is
        the static envelope they start from.
        """
        if modality == "text":
            return self.mask("text", "<think>", "</think>", "<|endofturn|>")
        if modality == "image":
            markers = ("<|dimg_start|>", "<|dimg_eol|>", "<|dimg_eoi|>", "<|dimg_end|>")
            ratios = [ratio_token(r) for r in self.aspect_ratios]
            return self.mask("image", *markers, *ratios, "<|endofturn|>")
        if modality == "audio":
            return self.mask("audio", "<|daud_start|>", "<|daud_end|>", "<|endofturn|>")
        raise ValueError(
            f"unknown output modality {modality!r}; expected one of {OUTPUT_MODALITIES}"
        )

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["specials"] = list(self.specials)
        data["image_grid"] = list(self.image_grid)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VocabLayout:
        data = dict(data)
        data["specials"] = tuple(data.get("specials", SPECIAL_TOKENS))
        data["image_grid"] = tuple(data.get("image_grid", (8, 8)))
        return cls(**data)
