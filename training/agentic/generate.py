"""Write the agentic and safety data as a manifest (JSONL, the toy world's format; text only).

Sample ``i`` is drawn from its own generator ``default_rng([seed, i])``, so the output is the
same for the same arguments. Tool tasks go to ``train`` / ``test``, or to ``novel-tool`` with
a tool of ``NOVEL_TOOLS`` (never in train); safety prompts to ``train`` / ``test``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from omni.sequence import Sample, Text, ToolCall, ToolResult, Turn
from training.agentic.environments import ALL_TOOLS, NOVEL_TOOLS, TRAIN_TOOLS
from training.agentic.episodes import Episode
from training.agentic.safety import sample_safety
from training.agentic.tasks import TOOL_TASKS, sample_episode

SAFETY_TASKS = ("safety", "safety_benign")
TASKS = TOOL_TASKS + SAFETY_TASKS
# Share of each task in the data, and of each split within a task.
TASK_SHARES = {
    "tool_call": 0.28,
    "tool_multi": 0.2,
    "tool_dialogue": 0.12,
    "tool_draw": 0.08,
    "safety": 0.16,
    "safety_benign": 0.16,
}
TEST_SHARE = 0.12
NOVEL_SHARE = 0.3  # of tool_call samples: the novel-tool split
MANIFEST_NAME = "manifest.jsonl"


def result_text(result: dict[str, Any]) -> str:
    """A tool result as its tool turn holds it."""
    return json.dumps(result, ensure_ascii=False)


def _tool_names(rng: np.random.Generator, episode: Episode) -> list[str]:
    """The tools the episode needs, shuffled; one of them alone comes with a distractor from
    the train tools (more than one already asks the model to choose)."""
    needed = list(dict.fromkeys(name for name, _ in episode.calls))
    others = sorted(set(TRAIN_TOOLS) - set(needed))
    names = needed if len(needed) > 1 else [*needed, others[int(rng.integers(len(others)))]]
    return [names[i] for i in rng.permutation(len(names))]


def episode_sample(rng: np.random.Generator, episode: Episode, identifier: str) -> Sample:
    """The conversation of an episode: the user's request over turns, each call and its
    result, then the answer; ``meta`` holds what the simulator needs to judge a replay."""
    turns = [Turn("user", [Text(episode.opening)])]
    for question, reveal in episode.reveals:
        turns += [Turn("assistant", [Text(question)]), Turn("user", [Text(reveal)])]
    for (name, arguments), result in zip(episode.calls, episode.results):
        turns.append(Turn("assistant", [ToolCall(name, arguments)]))
        turns.append(Turn("tool", [ToolResult(result_text(result), name)]))
    turns.append(Turn("assistant", [Text(episode.answer)]))
    names = _tool_names(rng, episode)
    meta = {
        "lang": episode.lang,
        "kind": episode.task,
        "state": episode.state,
        "calls": [{"name": n, "arguments": a} for n, a in episode.calls],
        "key": episode.key,
        "reveals": [reveal for _, reveal in episode.reveals],
        "novel": any(n in NOVEL_TOOLS for n in names),
    }
    tools = [ALL_TOOLS[n].schema for n in names]
    return Sample(turns, identifier, episode.task, meta, tools)


def _record(rng: np.random.Generator, index: int) -> dict[str, Any]:
    task = str(rng.choice(list(TASK_SHARES), p=list(TASK_SHARES.values())))
    lang = str(rng.choice(["en", "ko"]))
    identifier = f"{task}-{index:06d}"
    if task in SAFETY_TASKS:
        split = "test" if rng.random() < TEST_SHARE else "train"
        item = sample_safety(rng, lang, task == "safety_benign", split)
        turns = [Turn("user", [Text(item.prompt)]), Turn("assistant", [Text(item.response)])]
        meta = {"lang": lang, "category": item.category, "expected": item.expected}
        return {**Sample(turns, identifier, task, meta).to_dict(), "split": split}
    novel = task == "tool_call" and rng.random() < NOVEL_SHARE
    split = "novel-tool" if novel else "test" if rng.random() < TEST_SHARE else "train"
    sample = episode_sample(rng, sample_episode(rng, task, lang, novel), identifier)
    return {**sample.to_dict(), "split": split}


def generate(out_dir: str | Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` samples to ``out_dir/manifest.jsonl``; returns the manifest's path."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST_NAME
    with path.open("w", encoding="utf-8") as handle:
        for index in range(n):
            record = _record(np.random.default_rng([seed, index]), index)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
