"""``omni demo``: the Gradio demo (not built yet: this says so plainly)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="a saved Omni model folder (default: the shipped model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true")


def run(args: argparse.Namespace) -> int:
    print(
        "omni demo: the Gradio demo and the default model do not ship yet; they land with the "
        "demo and default-model work. Until then use the Python API and the tests "
        "(see README.md).",
        file=sys.stderr,
    )
    return 1
