"""``omni data agentic``: write tool-use episodes and safety prompts as a manifest."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (manifest.jsonl)")
    parser.add_argument("--n", type=int, default=4000, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")


def run(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from training.agentic.generate import generate

    if args.n < 1:
        print(f"omni: error: --n must be at least 1, got {args.n}")
        return 2
    manifest = generate(args.out, args.n, args.seed)
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    counts = Counter((r["task"], r["split"]) for r in records)
    print(f"wrote {len(records)} samples to {manifest}")
    print("tasks/splits: " + ", ".join(f"{t}/{s}={n}" for (t, s), n in sorted(counts.items())))
    return 0
