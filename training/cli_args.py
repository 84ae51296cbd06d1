"""Argument helpers shared by the training commands (no command imports another)."""

from __future__ import annotations

import argparse


def pairs(items: list[str], flag: str) -> dict[str, str]:
    """``["NAME=PATH", ...]`` -> ``{NAME: PATH}``; anything else is a ValueError naming ``flag``."""
    named = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{flag} takes NAME=PATH, got {item!r}")
        name, path = item.split("=", 1)
        named[name] = path
    return named


def add_tuning_arguments(
    parser: argparse.ArgumentParser, kind: str, init: str, batch_size: int
) -> None:
    """The options every style-invariance tuner takes (``omni train image-invariance``,
    ``speech-invariance``): the ``kind`` tokenizer to tune, where to write it, the world
    style to learn, and the loop's settings."""
    parser.add_argument("--init", default=init, help=f"the {kind} tokenizer to tune")
    parser.add_argument("--out", required=True, help="tuned tokenizer folder + checkpoint")
    parser.add_argument("--style", default="varied", help="world style whose inputs to learn")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
