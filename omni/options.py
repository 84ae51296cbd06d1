"""Generation options as one typed, checked object, and the device/dtype names ``omni.load`` takes.

Every option is checked here, before any input is read or any token decoded, so a bad value is a
``ValueError`` that names the option instead of a torch error from deep inside the loop.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

import torch

from omni.decoding import MAX_DRAFT_TOKENS, Sampling
from omni.tools import tool_schemas

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "float64": torch.float64,
    "double": torch.float64,
}


@dataclass(frozen=True)
class GenerationOptions:
    """The keyword options of ``omni.generate`` (see ``omni.generation`` for what each does)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    voice: Any = None
    steps: int | None = None
    guidance: float | None = None
    think: bool = False
    speculative: bool | None = None
    draft_tokens: int | None = None
    compiled: bool = False
    sample_rate: int | None = None
    tools: Any = None

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> GenerationOptions:
        """Options from keyword arguments; an unknown name is a ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown generation options: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**options)

    def __post_init__(self) -> None:
        _integer("max_new_tokens", self.max_new_tokens, minimum=1)
        _finite("temperature", self.temperature, minimum=0.0)
        _finite("top_p", self.top_p, minimum=0.0)
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        _integer("top_k", self.top_k, minimum=0)
        if self.seed is not None:
            _integer("seed", self.seed, minimum=0)
        if self.steps is not None:
            _integer("steps", self.steps, minimum=1)
        if self.guidance is not None:
            _finite("guidance", self.guidance)
        if self.sample_rate is not None:
            _integer("sample_rate", self.sample_rate, minimum=1)
        if self.think not in (True, False):
            raise ValueError(f"think must be True or False, got {self.think!r}")
        if self.speculative not in (None, True, False):
            raise ValueError(f"speculative must be True, False or None, got {self.speculative!r}")
        if self.compiled not in (True, False):
            raise ValueError(f"compiled must be True or False, got {self.compiled!r}")
        if self.compiled and self.speculative:
            raise ValueError("compiled=True decodes plainly: it cannot be speculative")
        if self.tools is not None:
            if not isinstance(self.tools, (list, tuple)):
                raise ValueError(
                    f"tools must be a list of schemas or functions, got {self.tools!r}"
                )
            tool_schemas(list(self.tools))
        if self.draft_tokens is not None:
            _integer("draft_tokens", self.draft_tokens, minimum=1)
            if self.draft_tokens > MAX_DRAFT_TOKENS:
                raise ValueError(
                    f"draft_tokens must be at most {MAX_DRAFT_TOKENS}, got {self.draft_tokens}"
                )

    def sampling(self) -> Sampling:
        return Sampling(float(self.temperature), float(self.top_p), int(self.top_k), self.seed)

    def image_options(self) -> dict[str, Any]:
        """Keyword options for the image decoder: steps and guidance where given, the seed."""
        given = {"steps": self.steps, "guidance": self.guidance}
        return {**{k: v for k, v in given.items() if v is not None}, "seed": self.seed}


def _integer(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _finite(name: str, value: Any, minimum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def parse_device(device: str | torch.device | None) -> torch.device | None:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``; None keeps it."""
    if device is None:
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: {error}") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} asked for, but MPS is not available here")
    return parsed


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A floating dtype by name (``"bfloat16"``, ``"bf16"``, ``"float32"``, ...) or itself."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point type, got {dtype}")
        return dtype
    name = str(dtype).removeprefix("torch.").lower()
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return DTYPES[name]
