"""The public API: ``omni.load``, ``omni.generate``, ``omni.generate_batch``, ``omni.stream``.

Options (all keyword): ``max_new_tokens`` (256), ``temperature`` (0 = greedy), ``top_p``,
``top_k``, ``seed``, ``voice`` (a speaker name or a reference clip: path or
``(sample_rate, array)``), ``steps`` and ``guidance`` for images, ``think`` (bool),
``speculative`` (MTP self-speculative decoding; on by default where the model has MTP),
``sample_rate`` (for raw waveforms in ``inputs``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from omni.pipeline import GenerationResult, OmniPipeline, StreamEvent
from omni.resources import shipped_path

DEFAULT_MODEL = shipped_path("assets/default-model")  # the checkout's, or the wheel's copy


@lru_cache(maxsize=4)
def _load_cached(path: str) -> OmniPipeline:
    return OmniPipeline.from_pretrained(path)


def load(path: str | Path | None = None) -> OmniPipeline:
    """A ready pipeline: ``None`` is the shipped default model, else a saved model folder."""
    if path is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise ValueError(
                f"no default model ships in this checkout ({DEFAULT_MODEL} is missing); "
                f"pass a saved model folder: omni.load('path/to/model')"
            )
        path = DEFAULT_MODEL
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(
            f"{path} is not a folder; Omni loads models saved with save_pretrained (hub names "
            f"must be downloaded to a folder first: nothing is fetched at run time)"
        )
    return _load_cached(str(folder.resolve()))


def _pipeline(model: OmniPipeline | str | Path | None) -> OmniPipeline:
    return model if isinstance(model, OmniPipeline) else load(model)


def generate(
    inputs: Any,
    out_modality: str = "text",
    model: OmniPipeline | str | Path | None = None,
    **options: Any,
) -> GenerationResult:
    """Answer ``inputs`` (text, images, audio, video, or a chat) with ``out_modality``."""
    return _pipeline(model).generate(inputs, out_modality, **options)


def generate_batch(
    requests: list[Any],
    out_modality: str = "text",
    model: OmniPipeline | str | Path | None = None,
    **options: Any,
) -> list[GenerationResult]:
    """Answer several requests in one padded batch; greedy results equal one-at-a-time."""
    return _pipeline(model).generate_batch(requests, out_modality, **options)


def stream(
    inputs: Any,
    out_modality: str = "text",
    model: OmniPipeline | str | Path | None = None,
    **options: Any,
) -> Iterator[StreamEvent]:
    """Yield ``text`` pieces and ``audio`` chunks as they are produced, then ``done``."""
    return _pipeline(model).stream(inputs, out_modality, **options)
