"""Tool-use episodes over the toy world: what the user asks, which calls answer it, in order.

An ``Episode`` is a task with a hidden scene (its environment state), the user's opening
message, the follow-ups a ``UserSimulator`` reveals one per turn (the user gives the needed
information over several turns), the expected calls and the final answer, computed by running
the calls on the simulators. ``key`` holds the words a correct final answer must contain.
This module holds the single-call episodes and the helpers the others share
(``training.agentic.multistep``, ``training.agentic.novel``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.agentic.environments import State, run_virtual
from training.toyworld.language import (
    EN_POSITION,
    KO_COLOUR_ADJ,
    KO_POSITION,
    KO_SHAPE,
    describe,
    en_noun_phrase,
    josa,
    ko_noun_phrase,
)
from training.toyworld.scenes import COLOURS, ObjectAttrs

UNIT_NAMES = {
    "en": {"mm": "millimetres", "cm": "centimetres", "m": "metres", "km": "kilometres",
           "g": "grams", "kg": "kilograms", "s": "seconds", "min": "minutes", "h": "hours"},
    "ko": {"mm": "밀리미터", "cm": "센티미터", "m": "미터", "km": "킬로미터", "g": "그램",
           "kg": "킬로그램", "s": "초", "min": "분", "h": "시간"},
}  # fmt: skip
Answer = Callable[[list[dict[str, Any]]], tuple[str, list[str]]]  # results -> (text, key)
Call = tuple[str, dict[str, Any]] | Callable[[list[dict[str, Any]]], tuple[str, dict[str, Any]]]
# (from, to) pairs whose results stay whole numbers for whole values.
CONVERSIONS = (("km", "m"), ("m", "cm"), ("cm", "mm"), ("kg", "g"), ("h", "min"), ("min", "s"))


@dataclass
class Episode:
    """One tool task: the calls in order, the answer they lead to, and how it is judged."""

    task: str
    lang: str
    state: State
    opening: str
    calls: list[tuple[str, dict[str, Any]]]
    answer: str
    key: list[str]
    reveals: list[tuple[str, str]] = field(default_factory=list)  # (assistant asks, user says)
    results: list[dict[str, Any]] = field(default_factory=list)


class UserSimulator:
    """Plays the user of a dialogue episode: each time the assistant answers without a tool
    call, the next piece of the request is revealed; then the conversation is over."""

    def __init__(self, reveals: list[str]) -> None:
        self.pending = list(reveals)

    def reply(self, assistant_text: str) -> str | None:
        return self.pending.pop(0) if self.pending else None


def finish(
    task: str,
    lang: str,
    state: State,
    opening: str,
    calls: list[Call],
    answer: Answer,
    reveals: list[tuple[str, str]] | None = None,
) -> Episode:
    """Run ``calls`` in order (a call may be a function of the earlier results) and write
    the answer from what they returned."""
    results: list[dict[str, Any]] = []
    done: list[tuple[str, dict[str, Any]]] = []
    for call in calls:
        name, arguments = call(results) if callable(call) else call
        done.append((name, arguments))
        results.append(run_virtual(name, arguments, state))
    text, key = answer(results)
    return Episode(task, lang, state, opening, done, text, key, reveals or [], results)


def pick(rng: np.random.Generator, options: Any) -> Any:
    """One of ``options``, drawn by ``rng``."""
    return options[int(rng.integers(len(options)))]


def colour_word(colour: str, lang: str) -> str:
    """A colour as an adjective of ``lang``."""
    return colour if lang == "en" else KO_COLOUR_ADJ[colour]


def count_answer(lang: str, colour: str) -> Answer:
    """The answer to a count of ``colour`` objects, stating the last result's count."""

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        n = results[-1]["count"]
        if lang == "en":
            noun = "object" if n == 1 else "objects"
            return f"There {'is' if n == 1 else 'are'} {n} {colour} {noun}.", [str(n)]
        return f"{KO_COLOUR_ADJ[colour]} 도형은 {n}개 있어요.", [str(n)]

    return answer


def count_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    colour = pick(rng, [o["colour"] for o in state["objects"]] + list(COLOURS))
    opening = (
        f"How many {colour} objects are in the scene?"
        if lang == "en"
        else f"장면에 {KO_COLOUR_ADJ[colour]} 도형이 몇 개 있어요?"
    )
    calls = [("count_objects", {"colour": colour})]
    return finish("tool_call", lang, state, opening, calls, count_answer(lang, colour))


def find_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    obj = pick(rng, state["objects"])
    colour, shape = obj["colour"], obj["shape"]
    if lang == "en":
        opening = f"Where is the {colour} {shape}?"
    else:
        opening = f"{KO_COLOUR_ADJ[colour]} {josa(KO_SHAPE[shape], '은', '는')} 어디에 있어요?"

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        where = results[0]["positions"][0]
        if lang == "en":
            return f"It is {EN_POSITION[where]}.", [where]
        return f"{KO_POSITION[where]}에 있어요.", [KO_POSITION[where]]

    calls = [("find_objects", {"colour": colour, "shape": shape})]
    return finish("tool_call", lang, state, opening, calls, answer)


def _phrase(found: dict[str, str], lang: str) -> str:
    attrs = ObjectAttrs(found["shape"], found["colour"], found["size"], None)
    return en_noun_phrase(attrs) if lang == "en" else ko_noun_phrase(attrs)


def describe_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    where = pick(rng, state["objects"])["position"]
    opening = (
        f"What is {EN_POSITION[where]}?" if lang == "en" else f"{KO_POSITION[where]}에 뭐가 있어요?"
    )

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        phrase = _phrase(results[0], lang)
        text = (
            f"There is a {phrase} {EN_POSITION[where]}."
            if lang == "en"
            else josa(phrase, "이 있어요.", "가 있어요.")
        )
        return text, [phrase]

    return finish(
        "tool_call", lang, state, opening, [("describe_object", {"position": where})], answer
    )


def sample_expression(rng: np.random.Generator) -> str:
    a, b = int(rng.integers(2, 50)), int(rng.integers(2, 20))
    return f"{a} {pick(rng, ['+', '-', '*'])} {b}"


def calc_answer(expression: str) -> Answer:
    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        return f"{expression} = {results[-1]['result']}.", [str(results[-1]["result"])]

    return answer


def calculator_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    expression = sample_expression(rng)
    opening = f"What is {expression}?" if lang == "en" else f"{expression}는 얼마예요?"
    calls = [("calculator", {"expression": expression})]
    return finish("tool_call", lang, state, opening, calls, calc_answer(expression))


def conversion(rng: np.random.Generator) -> tuple[int, str, str]:
    source, target = pick(rng, CONVERSIONS)
    return int(rng.integers(2, 30)), source, target


def convert_answer(value: int, source: str, target: str) -> Answer:
    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        result = results[-1]["value"]
        return f"{value} {source} = {result} {target}.", [str(result)]

    return answer


def convert_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    value, source, target = conversion(rng)
    names = UNIT_NAMES[lang]
    opening = (
        f"How many {names[target]} are in {value} {names[source]}?"
        if lang == "en"
        else f"{value}{names[source]}는 몇 {names[target]}예요?"
    )
    calls = [("convert_units", {"value": value, "from_unit": source, "to_unit": target})]
    return finish("tool_call", lang, state, opening, calls, convert_answer(value, source, target))


def draw_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    from training.toyworld.scenes import Scene

    caption = describe(Scene.from_attributes(state["objects"]), lang)
    opening = (
        f"Draw {caption}." if lang == "en" else josa(caption, "을 그려 주세요.", "를 그려 주세요.")
    )
    answer = f"Here is {caption}." if lang == "en" else f"{caption} 그림이에요."
    calls = [("generate_image", {"prompt": caption})]
    return finish("tool_draw", lang, state, opening, calls, lambda r: (answer, []))


SINGLE_BUILDERS = (
    count_episode,
    find_episode,
    describe_episode,
    calculator_episode,
    convert_episode,
)
