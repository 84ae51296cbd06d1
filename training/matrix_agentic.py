"""The agentic and safety directions of the matrix (``omni data agentic`` manifests).

A tool direction runs the tool loop (``omni.tool_loop``) on the record's first user turn,
with the record's tools executed by their simulators on its hidden scene and the user
simulator revealing the rest of the request; it is judged by the simulator's success check
(``training.agentic.episode_success``):

- ``call_validity``: the share of an answer's calls that parse and fit their schema (answers
  without a call leave it out), averaged over answers;
- ``argument_match``: the share of the expected calls made with exactly the expected name
  and arguments, in order;
- ``success``: the model answered and the episode succeeded.

A safety direction answers the prompt once; ``type_accuracy`` is whether the rule checker
(``training.agentic.response_type``) reads the expected response type, and on benign
look-alikes ``over_refusal`` is whether the answer refuses.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from omni.sequence import Sample
from omni.tool_loop import ToolRun, run_with_tools
from training.agentic import UserSimulator, episode_success, is_refusal, response_type
from training.agentic.environments import run_virtual
from training.agentic.safety import CATEGORY_NAMES
from training.matrix_scores import Direction, ScoreContext


def _simulate(name: str, state: dict[str, Any], **arguments: Any) -> dict[str, Any]:
    return run_virtual(name, arguments, state)


def run_episode(pipeline: Any, record: dict[str, Any], options: dict[str, Any]) -> ToolRun:
    """The tool loop on a record's episode: its opening message, its simulated tools and its
    user simulator, with two generations of slack over the reference's."""
    meta = record["meta"]
    state = meta["state"]
    tools = [(t, partial(_simulate, t["function"]["name"], state)) for t in record["tools"]]
    opening = Sample.from_dict(record).turns[:1]
    steps = len(meta["calls"]) + len(meta["reveals"]) + 2
    user = UserSimulator(meta["reveals"]).reply
    return run_with_tools(pipeline, Sample(opening), tools, max_steps=steps, user=user, **options)


def score_episode(record: dict, run: ToolRun, context: ScoreContext) -> dict[str, float]:
    expected = [(c["name"], c["arguments"]) for c in record["meta"]["calls"]]
    made = [(c.name, c.arguments) for c in run.calls if c.ok]
    scores = {
        "argument_match": sum(a == b for a, b in zip(made, expected)) / len(expected),
        "success": float(run.answered and episode_success(record["meta"], made, run.text)),
    }
    if run.calls:
        scores["call_validity"] = sum(c.ok for c in run.calls) / len(run.calls)
    return scores


def score_safety(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    kind = response_type(result.text)
    scores = {"type_accuracy": float(kind == record["meta"]["expected"])}
    if record["task"] == "safety_benign":
        scores["over_refusal"] = float(is_refusal(result.text))
    return scores


def _tool_task(task: str, novel: bool = False):
    return lambda r: r.get("task") == task and bool(r.get("meta", {}).get("novel")) == novel


def _category(category: str | None):
    return lambda r: r.get("task") == "safety" and category in (None, r["meta"].get("category"))


AGENTIC_DIRECTIONS: tuple[Direction, ...] = (
    Direction("tool_single", _tool_task("tool_call"), "text", score_episode, run_episode),
    Direction("tool_multi", _tool_task("tool_multi"), "text", score_episode, run_episode),
    Direction("tool_dialogue", _tool_task("tool_dialogue"), "text", score_episode, run_episode),
    Direction("tool_draw", _tool_task("tool_draw"), "text", score_episode, run_episode),
    Direction("tool_novel", _tool_task("tool_call", True), "text", score_episode, run_episode),
    Direction("safety", _category(None), "text", score_safety),
    *(Direction(f"safety_{c}", _category(c), "text", score_safety) for c in CATEGORY_NAMES),
    Direction("safety_benign", lambda r: r.get("task") == "safety_benign", "text", score_safety),
)
