"""Tools in the chat format: schemas, how calls and results are written, and parsing calls back.

Tools are described with transformers' ``tools=`` convention: JSON-schema functions
(``{"type": "function", "function": {"name", "description", "parameters"}}``), or Python
functions, turned into that form by ``transformers.utils.get_json_schema``. In the sequence::

    <|system|> <tools> name(arg: type, opt?: a|b): description \\n ... </tools> <|endofturn|>
    <|assistant|> [text] <tool_call>{"name": ..., "arguments": {...}}</tool_call> <|endofturn|>
    <|user|> <tool_response>result</tool_response> <|endofturn|>        (a ``tool`` turn)

The markers are plain text, and a tool turn is written under the ``<|user|>`` marker (as
Qwen2.5's template does): no special token is added, so the vocabulary layout, and with it
every saved checkpoint, stays as it is. Tools are written as one signature line each rather
than their JSON schema, which costs about five times fewer tokens (micro models have a 1024-token
context). The processor and the chat template write exactly these strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers.utils import get_json_schema

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
TOOLS_OPEN, TOOLS_CLOSE = "<tools>", "</tools>"
TOOL_TURN_MARKER = "user"  # the role token a tool turn is written under
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def tool_schema(tool: dict[str, Any] | Callable[..., Any]) -> dict[str, Any]:
    """One tool as a ``{"type": "function", "function": {...}}`` schema, checked."""
    if callable(tool) and not isinstance(tool, dict):
        return get_json_schema(tool)
    if not isinstance(tool, dict):
        raise ValueError(f"a tool is a JSON-schema dict or a function, got {type(tool).__name__}")
    function = tool.get("function", tool) if tool.get("type", "function") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValueError(
            "a tool schema needs {'type': 'function', 'function': {'name': ..., "
            f"'parameters': ...}}; got keys {sorted(tool)}"
        )
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters.get("properties", {}), dict):
        raise ValueError(f"tool {function['name']!r}: parameters.properties must be a dict")
    return {"type": "function", "function": {**function, "parameters": parameters}}


def tool_schemas(tools: list[Any] | None) -> list[dict[str, Any]]:
    """``tools`` (schemas or functions) as checked schemas; names must be distinct."""
    schemas = [tool_schema(t) for t in tools or []]
    names = [s["function"]["name"] for s in schemas]
    if len(set(names)) != len(names):
        raise ValueError(f"tool names must be distinct, got {names}")
    return schemas


def _arg_type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "|".join(str(value) for value in spec["enum"])
    return str(spec.get("type", "any"))


def _signature(function: dict[str, Any]) -> str:
    parameters = function.get("parameters", {})
    required = parameters.get("required", [])
    args = ", ".join(
        f"{name}{'' if name in required else '?'}: {_arg_type(spec)}"
        for name, spec in parameters.get("properties", {}).items()
    )
    return f"{function['name']}({args}): {function.get('description', '')}"


def render_tools(schemas: list[dict[str, Any]]) -> str:
    """The text of the tools turn: one signature line per tool between the tools markers."""
    lines = "\n".join(_signature(s["function"]) for s in schemas)
    return f"{TOOLS_OPEN}{lines}{TOOLS_CLOSE}"


def render_call(name: str, arguments: dict[str, Any]) -> str:
    """One call as the model writes it (``tojson`` in the chat template is this json.dumps)."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{CALL_OPEN}{body}{CALL_CLOSE}"


def render_result(content: str) -> str:
    """One tool result as the model reads it."""
    return f"{RESULT_OPEN}{content}{RESULT_CLOSE}"


@dataclass
class ParsedToolCall:
    """A call found in generated text. ``error`` says why it is malformed (None: well formed
    and fitting its schema); a call with an error is reported, never executed."""

    raw: str
    name: str | None = None
    arguments: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_CALL = re.compile(re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|$)", re.S)


def parse_tool_calls(
    text: str, schemas: list[dict[str, Any]] | None = None
) -> tuple[str, list[ParsedToolCall]]:
    """``text`` without its tool calls, and the calls in order, each checked against
    ``schemas`` (None: only the JSON form is checked). An unclosed last call is malformed."""
    calls = []
    for match in _CALL.finditer(text):
        closed = match.group(0).endswith(CALL_CLOSE)
        calls.append(_parse_one(match.group(1), closed, schemas))
    return _CALL.sub("", text).strip(), calls


def _parse_one(body: str, closed: bool, schemas: list[dict[str, Any]] | None) -> ParsedToolCall:
    if not closed:
        return ParsedToolCall(body, error=f"the tool call is not closed by {CALL_CLOSE}")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        return ParsedToolCall(body, error=f"the tool call is not JSON ({error.msg})")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return ParsedToolCall(body, error='a tool call is {"name": ..., "arguments": {...}}')
    arguments = data.get("arguments", {})
    if not isinstance(arguments, dict):
        return ParsedToolCall(body, data["name"], error="the tool call's arguments are not a dict")
    error = None if schemas is None else schema_error(data["name"], arguments, schemas)
    return ParsedToolCall(body, data["name"], arguments, error)


def schema_error(name: str, arguments: dict[str, Any], schemas: list[dict[str, Any]]) -> str | None:
    """Why a call does not fit its tool's schema (unknown tool, missing, unknown or mistyped
    argument, value outside the enum), or None. Hand-written: the checks a JSON-schema
    validator would make for flat function parameters, without adding a dependency."""
    functions = {s["function"]["name"]: s["function"] for s in schemas}
    if name not in functions:
        return f"unknown tool {name!r}; the tools are {sorted(functions)}"
    parameters = functions[name].get("parameters", {})
    properties = parameters.get("properties", {})
    missing = [p for p in parameters.get("required", []) if p not in arguments]
    if missing:
        return f"{name}: missing argument(s) {missing}"
    for key, value in arguments.items():
        if key not in properties:
            return f"{name}: unknown argument {key!r}; expected some of {sorted(properties)}"
        spec = properties[key]
        types = JSON_TYPES.get(spec.get("type", ""), (object,))
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"{name}: argument {key!r} must be {spec.get('type')}, got {value!r}"
        if "enum" in spec and value not in spec["enum"]:
            return f"{name}: argument {key!r} must be one of {spec['enum']}, got {value!r}"
    return None
