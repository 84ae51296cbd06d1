"""Virtual tools over the toy world: deterministic simulators with JSON-schema descriptions.

Each tool is a ``VirtualTool``: its schema (transformers' ``tools=`` convention) and a pure
function of the environment state (the hidden scene, as ``Scene.to_meta`` dicts) and the call's
arguments, returning a JSON-ready dict. The same call on the same state always returns the
same result, so a task's success can be checked by replaying it.

``TRAIN_TOOLS`` appear in the train and test splits; ``NOVEL_TOOLS`` only in the
``novel-tool`` split, so a model meets them by their schema alone.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.toyworld.language import parse_caption
from training.toyworld.scenes import COLOURS, POSITIONS, SHAPES, SIZES

State = dict[str, Any]  # {"objects": [{"shape", "colour", "size", "position"}, ...]}

# Factors to a base unit; a conversion stays inside one dimension.
UNITS: dict[str, tuple[str, int]] = {
    "mm": ("length", 1),
    "cm": ("length", 10),
    "m": ("length", 1000),
    "km": ("length", 1_000_000),
    "g": ("mass", 1),
    "kg": ("mass", 1000),
    "s": ("time", 1),
    "min": ("time", 60),
    "h": ("time", 3600),
}
SIDES = {"circle": 0, "triangle": 3, "square": 4, "star": 10}


@dataclass(frozen=True)
class VirtualTool:
    """A simulated tool: its JSON schema and its deterministic implementation."""

    name: str
    description: str
    parameters: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    run: Callable[[State, dict[str, Any]], dict[str, Any]]

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": self.parameters,
                    "required": list(self.required),
                },
            },
        }


def _matching(state: State, arguments: dict[str, Any]) -> list[dict[str, str]]:
    keys = ("colour", "shape", "size")
    return [
        o
        for o in state.get("objects", [])
        if all(o[k] == arguments[k] for k in keys if k in arguments)
    ]


def _count(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(_matching(state, arguments))}


def _find(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"positions": [o["position"] for o in _matching(state, arguments)]}


def _describe(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    for obj in state.get("objects", []):
        if obj["position"] == arguments["position"]:
            return {k: obj[k] for k in ("size", "colour", "shape")}
    return {"error": f"no object at {arguments['position']}"}


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(node: ast.AST) -> int:
    """Integers with + - * and parentheses. Hand-written: Python has no safe arithmetic eval
    (``ast.literal_eval`` refuses operators), and ``eval`` must never see model output."""
    if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 10**6:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand)
    raise ValueError("only integers, + - * and parentheses are allowed")


def _calculate(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    expression = arguments["expression"]
    if len(expression) > 64:
        return {"error": "the expression is too long"}
    try:
        return {"result": _evaluate(ast.parse(expression, mode="eval").body)}
    except (SyntaxError, ValueError) as error:
        return {"error": f"cannot evaluate {expression!r}: {error}"}


def number(value: float) -> int | float:
    """A result as an int when it is whole (3000, not 3000.0)."""
    return int(value) if float(value).is_integer() else round(value, 3)


def _convert(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    (source, a), (target, b) = UNITS[arguments["from_unit"]], UNITS[arguments["to_unit"]]
    if source != target:
        return {"error": f"cannot convert {source} into {target}"}
    return {"value": number(arguments["value"] * a / b)}


def _draw(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    objects = parse_caption(arguments["prompt"])
    if not objects:
        return {"error": "the prompt names no shape to draw"}
    return {"image": f"image-{len(objects)}-objects", "objects": len(objects)}


def _area(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"area": number(arguments["width"] * arguments["height"])}


def _sides(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"sides": SIDES[arguments["shape"]]}


def _colours(state: State, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"colours": sorted({o["colour"] for o in state.get("objects", [])})}


def _enum(values: Any, description: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "description": description}


_FILTERS = {
    "colour": _enum(COLOURS, "colour of the objects"),
    "shape": _enum(SHAPES, "shape of the objects"),
    "size": _enum(SIZES, "size of the objects"),
}
_UNIT = _enum(UNITS, "unit")

TRAIN_TOOLS: dict[str, VirtualTool] = {
    tool.name: tool
    for tool in (
        VirtualTool("count_objects", "Count matching objects in the scene.", _FILTERS, (), _count),
        VirtualTool("find_objects", "Positions of matching objects.", _FILTERS, (), _find),
        VirtualTool(
            "describe_object",
            "Size, colour and shape of the object at a position.",
            {"position": _enum(POSITIONS, "where the object is")},
            ("position",),
            _describe,
        ),
        VirtualTool(
            "calculator",
            "Evaluate integers with + - * and parentheses.",
            {"expression": {"type": "string", "description": "e.g. 3 + 4 * 2"}},
            ("expression",),
            _calculate,
        ),
        VirtualTool(
            "convert_units",
            "Convert a value between units.",
            {"value": {"type": "number"}, "from_unit": _UNIT, "to_unit": _UNIT},
            ("value", "from_unit", "to_unit"),
            _convert,
        ),
        VirtualTool(
            "generate_image",
            "Draw an image of the described shapes.",
            {"prompt": {"type": "string", "description": "the shapes to draw"}},
            ("prompt",),
            _draw,
        ),
    )
}
NOVEL_TOOLS: dict[str, VirtualTool] = {
    tool.name: tool
    for tool in (
        VirtualTool(
            "rectangle_area",
            "Area of a rectangle.",
            {"width": {"type": "integer"}, "height": {"type": "integer"}},
            ("width", "height"),
            _area,
        ),
        VirtualTool(
            "count_sides",
            "Number of sides of a shape.",
            {"shape": _enum(SHAPES, "the shape")},
            ("shape",),
            _sides,
        ),
        VirtualTool("list_colours", "Colours present in the scene.", {}, (), _colours),
    )
}
ALL_TOOLS = {**TRAIN_TOOLS, **NOVEL_TOOLS}


def run_virtual(name: str, arguments: dict[str, Any], state: State) -> dict[str, Any]:
    """Run one call of a virtual tool on ``state`` (the call must fit the tool's schema)."""
    if name not in ALL_TOOLS:
        raise ValueError(f"unknown virtual tool {name!r}; expected one of {sorted(ALL_TOOLS)}")
    return ALL_TOOLS[name].run(state, arguments)
