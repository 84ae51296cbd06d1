"""How the routed experts of an MoE backbone run: one switch over the whole Omni model.

transformers 5.x runs the experts of ``exaone_moe``, ``solar_open`` and the other
``@use_experts_implementation`` models in one of several ways: ``"eager"`` (a loop over the
experts that received tokens), ``"batched_mm"`` (each token's chosen experts' weights gathered
and multiplied in one batched product) or ``"grouped_mm"`` (tokens sorted by expert, one grouped
product; transformers' default). The backbone and the MTP block are two transformers models, so
the choice is made for both here. ``benchmarks/bench_decode.py`` measures each in decode steps
and 2-to-5-token verification steps.
"""

from __future__ import annotations

from typing import Any

EXPERTS_IMPLEMENTATIONS = ("eager", "batched_mm", "grouped_mm")


def _expert_models(model: Any) -> list[Any]:
    """The transformers models inside ``model`` (backbone, MTP block) that have MoE experts."""
    parts = [model.backbone, getattr(getattr(model, "mtp", None), "block", None)]
    return [p for p in parts if p is not None and p._can_set_experts_implementation()]


def experts_implementation(model: Any) -> str | None:
    """The implementation the backbone's experts run with; None for a dense backbone."""
    parts = _expert_models(model)
    return parts[0].config._experts_implementation if parts else None


def check_experts(implementation: str) -> None:
    """A ``ValueError`` naming the choices unless ``implementation`` is one of them."""
    if implementation not in EXPERTS_IMPLEMENTATIONS:
        raise ValueError(
            f"experts must be one of {', '.join(EXPERTS_IMPLEMENTATIONS)}, got {implementation!r}"
        )


def use_experts(model: Any, implementation: str) -> None:
    """Run every MoE layer of ``model`` with ``implementation`` (a dense model is left as is)."""
    check_experts(implementation)
    for part in _expert_models(model):
        part.set_experts_implementation(implementation)
