"""The public API: ``omni.load``, ``omni.generate``, ``omni.generate_batch``, ``omni.stream``.

Options (all keyword): ``max_new_tokens`` (256), ``temperature`` (0 = greedy), ``top_p``,
``top_k``, ``seed`` (None: fresh randomness on every call; an integer reproduces the answer and
its image), ``voice`` (a speaker name or a reference clip: path or ``(sample_rate, array)``),
``steps`` and ``guidance`` for images, ``think`` (reason first, in a think block closed before
any image or audio; the reasoning comes back in ``result.thinking``, apart from
``result.text``), ``speculative`` (MTP self-speculative decoding; on by default where the model
has MTP and its generation config does not turn it off, drafting only while drafts pay, in
batches too), ``draft_tokens`` (1 to 4: the length
of each chain of MTP drafts; None chooses it from the measured acceptance), ``compiled`` (plain
decoding on a static KV cache with a ``torch.compile``d step, ``omni.compiled``), ``sample_rate`` (for raw waveforms in ``inputs``),
``tools`` (JSON-schema functions or Python functions the model may call: the calls come back
parsed and checked in ``result.tool_calls``; ``omni.generate_with_tools`` also runs them).
They are checked together, before any decoding, by ``omni.options.GenerationOptions``.

The model's device and dtype are chosen once, by ``omni.load(path, device=..., dtype=...)``;
every tensor generation makes follows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from omni.experts import check_experts, use_experts
from omni.options import parse_device, parse_dtype
from omni.pipeline import GenerationResult, OmniPipeline, StreamEvent
from omni.placement import DeviceMap, check_device_map, dispatch_pipeline
from omni.resources import shipped_path

DEFAULT_MODEL = shipped_path("assets/default-model")  # the checkout's, or the wheel's copy


@lru_cache(maxsize=4)
def _load_cached(
    path: str,
    device: torch.device | None,
    dtype: torch.dtype | None,
    experts: str | None,
    device_map: tuple | str | None = None,
    max_memory: tuple | None = None,
) -> OmniPipeline:
    pipe = OmniPipeline.from_pretrained(path).to(device, dtype)
    if device_map is not None:
        dispatch_pipeline(pipe, device_map, dict(max_memory) if max_memory else None)
    if experts is not None:
        use_experts(pipe.model, experts)
    return pipe


def load(
    path: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    experts: str | None = None,
    device_map: DeviceMap | None = None,
    max_memory: dict[int | str, int | str] | None = None,
) -> OmniPipeline:
    """A ready pipeline: ``None`` is the shipped default model, else a saved model folder.

    ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...) and ``dtype`` (``"float32"``,
    ``"bfloat16"``, ``"float16"``, ...) place the model and its decoders; None keeps the saved
    float32 weights on the CPU. ``experts`` chooses how an MoE backbone runs its experts
    (``omni.experts``; None keeps transformers' ``"grouped_mm"``, the fastest measured).
    ``device_map`` (``"auto"``, or a dict of module names to devices) spreads the LM over
    several devices with accelerate, in place of ``device``; ``max_memory`` (e.g.
    ``{0: "70GiB", "cpu": "200GiB"}``) bounds what ``"auto"`` puts on each (``omni.placement``).
    A bad name is a ``ValueError`` before anything is read.
    """
    device_map = check_device_map(device_map, device)
    if max_memory is not None and device_map != "auto":
        raise ValueError("max_memory bounds device_map='auto'; pass both, or neither")
    device, dtype = parse_device(device), parse_dtype(dtype)
    if experts is not None:
        check_experts(experts)
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
    memory = tuple(sorted(max_memory.items(), key=str)) if max_memory else None
    return _load_cached(str(folder.resolve()), device, dtype, experts, device_map, memory)


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


def generate_with_tools(
    inputs: Any,
    tools: list[Any],
    model: OmniPipeline | str | Path | None = None,
    **options: Any,
) -> Any:
    """Answer ``inputs`` calling ``tools`` (functions or ``(schema, callable)`` pairs) as the
    model asks: ``omni.tool_loop.run_with_tools`` (``max_steps``, ``timeout_s``, ``user``);
    returns its ``ToolRun``."""
    from omni.tool_loop import run_with_tools

    return run_with_tools(_pipeline(model), inputs, tools, **options)


def stream(
    inputs: Any,
    out_modality: str = "text",
    model: OmniPipeline | str | Path | None = None,
    **options: Any,
) -> Iterator[StreamEvent]:
    """Yield ``text`` pieces and ``audio`` chunks as they are produced, then ``done``."""
    return _pipeline(model).stream(inputs, out_modality, **options)
