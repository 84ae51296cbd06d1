"""``omni data toyworld``: write the synthetic bilingual world (manifest + media)."""

from __future__ import annotations

import argparse

from training.toyworld.styles import STYLES
from training.toyworld.tasks import ALL_TASKS, TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (manifest.jsonl, media/)")
    parser.add_argument("--n", type=int, default=1000, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (>= 32)")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=ALL_TASKS,
        help="task types (default: all; the classic style leaves out the video tasks)",
    )
    parser.add_argument(
        "--style",
        default="varied",
        help=f"world style, one of {', '.join(STYLES)} (classic: the original single style)",
    )
    parser.add_argument(
        "--style-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="replace one range of the style, e.g. jpeg_share=0 or 'pitch=[[30,60]]'",
    )


def style_options(pairs: list[str]) -> dict:
    """``KEY=JSON`` pairs as keyword options of ``world_style`` (lists become tuples)."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"style option {pair!r} is not KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"style option {key!r}: {value!r} is not JSON ({error})") from None
        options[key] = _as_tuples(parsed)
    return options


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def run(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from training.toyworld.speech import EspeakNotFoundError
    from training.toyworld.styles import world_style
    from training.toyworld.tasks import generate

    try:
        style = world_style(args.style, **style_options(args.style_option))
    except ValueError as error:
        print(f"omni: error: {error}")
        return 2
    try:
        tasks = args.tasks or (TASKS if style.name == "classic" else ALL_TASKS)
        manifest = generate(args.out, args.n, args.seed, size=args.size, tasks=tasks, style=style)
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
