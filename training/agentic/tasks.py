"""Tool tasks by name: which episode builders write each of them.

``tool_call`` (one call), ``tool_multi`` (two or three calls in order), ``tool_dialogue`` (the
user reveals the request over turns) and ``tool_draw`` (the image-generation tool); with
``novel=True`` a ``tool_call`` episode uses a tool of ``NOVEL_TOOLS``.
"""

from __future__ import annotations

import numpy as np

from training.agentic.episodes import SINGLE_BUILDERS, Episode, draw_episode, pick
from training.agentic.multistep import MULTI_BUILDERS, dialogue_episode
from training.agentic.novel import NOVEL_BUILDERS
from training.toyworld.scenes import sample_scene

TOOL_TASKS = ("tool_call", "tool_multi", "tool_dialogue", "tool_draw")


def sample_episode(rng: np.random.Generator, task: str, lang: str, novel: bool = False) -> Episode:
    """One episode of ``task`` (a ``TOOL_TASKS`` name) over a freshly drawn hidden scene."""
    state = {"objects": sample_scene(rng).to_meta()}
    if novel:
        return pick(rng, NOVEL_BUILDERS)(rng, lang, state)
    if task == "tool_call":
        return pick(rng, SINGLE_BUILDERS)(rng, lang, state)
    if task == "tool_multi":
        return pick(rng, MULTI_BUILDERS)(rng, lang, state)
    if task == "tool_dialogue":
        return dialogue_episode(rng, lang, state)
    if task == "tool_draw":
        return draw_episode(rng, lang, state)
    raise ValueError(f"unknown tool task {task!r}; expected one of {TOOL_TASKS}")
