"""``omni rl init|generate|reward|train|loop``: RL with verifiable rewards through the SnapPO
stages (``stage_commands``): ``gspo`` (sequence-level ratio and clipping), ``agapo`` (all-wrong
groups keep a small negative advantage) or ``grpo`` (the group-normalised baseline).
"""

from __future__ import annotations

import argparse

from training.post.stage_commands import add_stage_commands, run

RL_LOSSES = ("gspo", "agapo", "grpo")

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stage_commands(parser, RL_LOSSES)
