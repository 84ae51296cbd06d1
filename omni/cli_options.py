"""Command-line options more than one ``omni`` command takes (argparse only: building the
parser must stay cheap, so nothing heavy is imported here)."""

from __future__ import annotations

import argparse


def add_placement_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--dtype``, passed to ``omni.load`` (``omni generate``, ``omni demo``)."""
    parser.add_argument("--device", help="where the model runs: cpu (default), cuda, cuda:1, mps")
    parser.add_argument("--dtype", help="weights' dtype: float32 (default), bfloat16, float16")
