"""``omni pref init|generate|reward|train|loop``: preference learning through the SnapPO stages.

The same stages and store as ``omni rl``, with a preference objective: ``dpo`` (iterative DPO:
each round pairs correct against incorrect answers of the round's own samples, with the
generating policy as reference; ``--nll-weight`` adds the NLL on the winner), ``simper`` on the
same pairs, or ``grouper`` over whole groups.
"""

from __future__ import annotations

import argparse

from training.post.stage_commands import add_stage_commands, run

PREFERENCE_LOSSES = ("dpo", "simper", "grouper")

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stage_commands(parser, PREFERENCE_LOSSES)
