"""Text-only greedy decoding: the Omni wrapper vs the bare backbone's ``generate``.

Same micro config, same weights, same prompt, same command; the two run turn about and the
figure is the ratio of median wall times (wrapper / backbone), so machine speed and load
changes cancel out. Goal: at most 1.05.

    .venv/bin/python benchmarks/bench_wrapper_overhead.py [--model micro-hcx-omni] [--tokens 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from omni import Sample, Text, Turn
from omni.presets import build_micro


def alternating_medians(first, second, repeats: int) -> tuple[float, float]:
    """Median wall times of two functions run turn about, so load changes hit both alike."""
    first(), second()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="micro-hcx-omni")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--out",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, processor = build_micro(args.model, encoders={}, mtp_layers=0)
    model.eval()
    prompt = Sample([Turn("user", [Text("describe a big red circle on the left")])])
    batch = processor([prompt], padding_side="left", add_generation_prompt=True)
    common = dict(
        max_new_tokens=args.tokens,
        min_new_tokens=args.tokens,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=model.layout.special_id("<|pad|>"),
    )

    def wrapper():
        return model.generate(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, **common
        )

    def backbone():
        return model.backbone.generate(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, **common
        )

    with torch.no_grad():
        assert torch.equal(wrapper(), backbone()), "wrapper and backbone disagree"
        t_backbone, t_wrapper = alternating_medians(backbone, wrapper, args.repeats)
    print(f"model {args.model}, {args.tokens} new tokens, median of {args.repeats}")
    print(f"backbone.generate : {t_backbone * 1e3:8.1f} ms ({args.tokens / t_backbone:.0f} tok/s)")
    print(f"omni wrapper      : {t_wrapper * 1e3:8.1f} ms ({args.tokens / t_wrapper:.0f} tok/s)")
    print(f"overhead ratio    : {t_wrapper / t_backbone:.3f} (goal <= 1.05)")
    figures = {
        "model": args.model,
        "new_tokens": args.tokens,
        "repeats": args.repeats,
        "backbone_generate_ms": round(t_backbone * 1e3, 1),
        "omni_wrapper_ms": round(t_wrapper * 1e3, 1),
        "overhead_ratio": round(t_wrapper / t_backbone, 3),
    }
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
