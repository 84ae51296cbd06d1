"""``omni data toyworld``: write the synthetic bilingual world (manifest + media)."""

from __future__ import annotations

import argparse

from training.toyworld.tasks import TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (manifest.jsonl, media/)")
    parser.add_argument("--n", type=int, default=1000, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (>= 32)")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="task types")


def run(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from training.toyworld.speech import EspeakNotFoundError
    from training.toyworld.tasks import generate

    try:
        manifest = generate(args.out, args.n, args.seed, size=args.size, tasks=args.tasks)
    except EspeakNotFoundError as error:
        print(f"omni: error: {error}")
        return 1
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    splits = Counter(r["split"] for r in records)
    tasks = Counter(r["task"] for r in records)
    print(f"wrote {len(records)} samples to {manifest}")
    print("splits: " + ", ".join(f"{k}={v}" for k, v in sorted(splits.items())))
    print("tasks: " + ", ".join(f"{k}={v}" for k, v in sorted(tasks.items())))
    return 0
