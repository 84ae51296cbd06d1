"""The tool loop: generate, run the calls the model makes, feed the results back, until the
model answers without a call or the step limit is reached.

Every way a call can go wrong reaches the model as a tool error, ``{"error": "..."}``, and the
loop goes on: a malformed call or one that does not fit its schema (never executed), a tool
that raises, one that runs past ``timeout_s`` and one whose result is not JSON or is too long.
A user simulator (``user(text) -> str | None``) may answer the model's questions, so the user
can reveal a request over several turns.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omni.inputs import to_sample
from omni.results import GenerationResult
from omni.sequence import Sample, Text, ToolCall, ToolResult, Turn
from omni.tools import CALL_CLOSE, CALL_OPEN, ParsedToolCall, tool_schema

MAX_RESULT_CHARS = 2000


@dataclass
class ToolStep:
    """One call the model made and what the model was told back."""

    call: ParsedToolCall
    content: str
    error: bool


@dataclass
class ToolRun:
    """A finished loop: the last answer, every call with its result, the whole conversation,
    and whether the model answered (False: the step limit ended the loop)."""

    result: GenerationResult
    steps: list[ToolStep]
    conversation: Sample
    answered: bool
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def calls(self) -> list[ParsedToolCall]:
        return [step.call for step in self.steps]


def _implementations(tools: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Callable]]:
    """Schemas and callables by name from functions or ``(schema, callable)`` pairs."""
    schemas, runners = [], {}
    for tool in tools:
        schema, run = (
            (tool_schema(tool[0]), tool[1])
            if isinstance(tool, tuple)
            else (tool_schema(tool), tool)
        )
        if not callable(run):
            raise ValueError(f"tool {schema['function']['name']!r} has nothing to call")
        schemas.append(schema)
        runners[schema["function"]["name"]] = run
    if len(runners) != len(schemas):
        raise ValueError(
            f"tool names must be distinct, got {[s['function']['name'] for s in schemas]}"
        )
    return schemas, runners


def call_tool(run: Callable, arguments: dict[str, Any], timeout_s: float) -> tuple[str, bool]:
    """``run(**arguments)`` as the text fed back and whether it is an error. The call runs in
    a daemon thread so that a tool that hangs neither blocks the loop past ``timeout_s`` nor
    keeps the interpreter from exiting (``concurrent.futures`` workers are joined at exit)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = run(**arguments)
        except Exception as error:  # any failure of the tool is reported to the model
            outcome["error"] = f"{type(error).__name__}: {error}"

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return _error(f"the tool did not answer within {timeout_s:g} s"), True
    if "error" in outcome:
        return _error(f"the tool raised {outcome['error']}"), True
    value = outcome.get("value")
    try:
        content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return _error(f"the tool returned a {type(value).__name__}, not JSON"), True
    if len(content) > MAX_RESULT_CHARS:
        return _error(f"the tool returned {len(content)} characters, over {MAX_RESULT_CHARS}"), True
    return content, False


def _error(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


def _assistant_turn(result: GenerationResult) -> Turn:
    """What the model said: its text, then each call (a malformed one as the text it wrote)."""
    segments: list[Any] = [Text(result.text)] if result.text else []
    for call in result.tool_calls:
        if call.name is not None and call.arguments is not None:
            segments.append(ToolCall(call.name, call.arguments))
        else:
            segments.append(Text(f"{CALL_OPEN}{call.raw}{CALL_CLOSE}"))
    return Turn("assistant", segments)


def _execute(call: ParsedToolCall, runners: dict[str, Callable], timeout_s: float) -> ToolStep:
    if not call.ok:
        return ToolStep(call, _error(f"malformed tool call, not run: {call.error}"), True)
    content, failed = call_tool(runners[call.name], call.arguments or {}, timeout_s)
    return ToolStep(call, content, failed)


def run_with_tools(
    pipe: Any,
    inputs: Any,
    tools: list[Any],
    max_steps: int = 4,
    timeout_s: float = 5.0,
    user: Callable[[str], str | None] | None = None,
    **options: Any,
) -> ToolRun:
    """Answer ``inputs`` with ``tools`` (Python functions, or ``(schema, callable)`` pairs),
    running the model's calls between at most ``max_steps`` generations."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
    schemas, runners = _implementations(tools)
    conversation = dataclasses.replace(to_sample(inputs), tools=schemas)
    conversation.turns = list(conversation.turns)
    steps: list[ToolStep] = []
    usage = {"generations": 0, "new_tokens": 0}
    for _ in range(max_steps):
        result = pipe.generate(conversation, tools=schemas, **options)
        usage["generations"] += 1
        usage["new_tokens"] += len(result.tokens)
        conversation.turns.append(_assistant_turn(result))
        if result.tool_calls:
            for call in result.tool_calls:
                steps.append(_execute(call, runners, timeout_s))
                name = call.name or ""
                conversation.turns.append(Turn("tool", [ToolResult(steps[-1].content, name)]))
            continue
        reply = user(result.text) if user is not None else None
        if reply is None:
            return ToolRun(result, steps, conversation, True, usage)
        conversation.turns.append(Turn("user", [Text(reply)]))
    return ToolRun(result, steps, conversation, False, usage)
