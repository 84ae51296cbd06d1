"""``bench_decode.py``'s report: the docs tables from its figures, and the merge of a run that
measured only some models or parts into the figures of earlier runs."""

from __future__ import annotations

import json
from pathlib import Path

PARTS = ("decoding", "throughput", "experts", "zero")
# part -> the model-entry keys it writes ("throughput_batch_<size>" is matched by prefix)
PART_KEYS = {
    "decoding": ("decoding", "best_k"),
    "throughput": ("throughput_batch_",),
    "experts": ("experts",),
    "zero": ("zero_acceptance",),
}


def merged(out: Path, figures: dict, full: bool) -> dict:
    """``figures`` of this run, merged into the report already at ``out`` unless the run was
    full (every model, every part): each measured model keeps its entries of the parts this
    run did not measure, and the run's arguments are appended to ``updates``."""
    if full or not out.is_file():
        return figures
    report = json.loads(out.read_text(encoding="utf-8"))
    parts = figures["arguments"]["parts"]
    for name, entry in figures["models"].items():
        old = report["models"].get(name, {})
        stale = [k for k in old for p in parts for prefix in PART_KEYS[p] if k.startswith(prefix)]
        kept = {k: v for k, v in old.items() if k not in stale}
        report["models"][name] = {**kept, **entry}
    report.setdefault("updates", []).append(figures["arguments"])
    return report


def head(*columns: str) -> list[str]:
    """A markdown table's header and rule."""
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def markdown(figures: dict) -> str:
    """The docs table: speculative speed-up over transformers' generate, per row of the run."""
    lines = head(
        "model",
        "output",
        "batch",
        "omni plain",
        "best k",
        "omni best k",
        "omni auto",
        "omni compiled",
        "hf compiled",
        "acceptance (auto, by depth)",
        "identical",
    )
    for model, entry in figures["models"].items():
        for key, figure in entry.get("decoding", {}).items():
            modality, batch = key.split("@")
            ratios = figure["ratio_to_hf_generate"]
            best = entry["best_k"][key]
            accept = figure["acceptance_by_depth"].get("omni_auto", [])
            lines.append(
                f"| {model} | {modality} | {batch} | {ratios['omni_plain']:.2f}x | {best} | "
                f"{ratios[best]:.2f}x | {ratios['omni_auto']:.2f}x | "
                f"{ratios['omni_compiled']:.2f}x | "
                f"{ratios.get('hf_generate_compiled', float('nan')):.2f}x | "
                f"{', '.join('-' if a is None else f'{a:.0%}' for a in accept)} | "
                f"{'yes' if all(figure['identical_output'].values()) else 'NO'} |"
            )
    lines += [
        "",
        *head(
            "model",
            "output",
            "batch",
            "plain: batched / one at a time",
            "auto: batched / one at a time",
            "identical",
        ),
    ]
    for model, entry in figures["models"].items():
        for key, by_modality in entry.items():
            if key.startswith("throughput_batch_"):
                size = key.rsplit("_", 1)[1]
                for modality, figure in by_modality.items():
                    ratios = figure["batched_over_one_at_a_time"]
                    lines.append(
                        f"| {model} | {modality} | {size} | {ratios['plain']:.2f}x | "
                        f"{ratios['auto']:.2f}x | {'yes' if figure['identical_output'] else 'NO'} |"
                    )
    lines += [
        "",
        *head(
            "model",
            "zero acceptance: omni auto / omni plain",
            "by pass",
            "median per prompt",
            "drafts",
            "paused steps",
            "identical",
        ),
    ]
    for model, entry in figures["models"].items():
        zero = entry.get("zero_acceptance")
        if zero is not None:
            lines.append(
                f"| {model} | {zero['ratio_to_omni_plain']:.3f}x | "
                f"{', '.join(f'{r:.3f}x' for r in zero.get('ratio_by_pass', []))} | "
                f"{zero['median_ratio_per_prompt']:.3f}x | {zero['drafts']} "
                f"({zero['accepted']} accepted) | {zero['paused_steps']} of {zero['tokens']} "
                f"tokens | {'yes' if zero['identical_output'] else 'NO'} |"
            )
    return "\n".join(lines) + "\n"
