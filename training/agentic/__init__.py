"""Agentic and safety data over the toy world: virtual tools with verifiable success, tool-use
episodes with a user simulator, and a risk taxonomy with benign look-alikes.

Public API::

    generate(out_dir, n, seed) -> Path          # manifest.jsonl (omni data agentic)
    TRAIN_TOOLS, NOVEL_TOOLS                     # name -> VirtualTool (schema + simulator)
    run_virtual(name, arguments, state) -> dict
    sample_episode(rng, task, lang, novel=False) -> Episode
    UserSimulator(reveals).reply(text) -> str | None
    CATEGORIES                                   # the risk taxonomy
    response_type(text) -> "refuse" | "bare_refusal" | "safe_completion" | "comply"
    episode_success(meta, calls, answer) -> bool
"""

from training.agentic.checker import episode_success, is_refusal, response_type
from training.agentic.environments import NOVEL_TOOLS, TRAIN_TOOLS, VirtualTool, run_virtual
from training.agentic.episodes import Episode, UserSimulator
from training.agentic.generate import TASKS, generate
from training.agentic.safety import CATEGORIES, RESPONSE_TYPES, RiskCategory
from training.agentic.tasks import TOOL_TASKS, sample_episode

__all__ = [
    "CATEGORIES",
    "NOVEL_TOOLS",
    "RESPONSE_TYPES",
    "TASKS",
    "TOOL_TASKS",
    "TRAIN_TOOLS",
    "Episode",
    "RiskCategory",
    "UserSimulator",
    "VirtualTool",
    "episode_success",
    "generate",
    "is_refusal",
    "response_type",
    "run_virtual",
    "sample_episode",
]
