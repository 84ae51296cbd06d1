"""Tool episodes of several steps: two or three calls in order (a later call often built from
an earlier result), and dialogues in which the user reveals the request over several turns."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.agentic.environments import State
from training.agentic.episodes import (
    UNIT_NAMES,
    Episode,
    calc_answer,
    colour_word,
    conversion,
    convert_answer,
    count_answer,
    finish,
    pick,
    sample_expression,
)
from training.toyworld.language import EN_POSITION, KO_COLOUR_ADJ, KO_COLOUR_NOUN, KO_POSITION
from training.toyworld.scenes import COLOURS


def sum_of_counts_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    first, second = (str(c) for c in rng.choice(list(COLOURS), size=2, replace=False))
    if lang == "en":
        opening = f"How many {first} or {second} objects are there in total?"
    else:
        opening = f"{KO_COLOUR_ADJ[first]} 도형과 {KO_COLOUR_ADJ[second]} 도형은 모두 몇 개예요?"
    calls = [
        ("count_objects", {"colour": first}),
        ("count_objects", {"colour": second}),
        lambda r: ("calculator", {"expression": f"{r[0]['count']} + {r[1]['count']}"}),
    ]

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        total = results[-1]["result"]
        text = f"There are {total} in total." if lang == "en" else f"모두 {total}개예요."
        return text, [str(total)]

    return finish("tool_multi", lang, state, opening, calls, answer)


def colour_then_count_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    where = pick(rng, state["objects"])["position"]
    if lang == "en":
        opening = f"How many objects share the colour of the one {EN_POSITION[where]}?"
    else:
        opening = f"{KO_POSITION[where]}에 있는 도형과 같은 색의 도형은 몇 개예요?"
    calls = [
        ("describe_object", {"position": where}),
        lambda r: ("count_objects", {"colour": r[0]["colour"]}),
    ]

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        colour, n = results[0]["colour"], results[1]["count"]
        if lang == "en":
            return f"It is {colour}, and {n} {'is' if n == 1 else 'are'} {colour}.", [
                colour,
                str(n),
            ]
        return f"{KO_COLOUR_NOUN[colour]}이고, {n}개예요.", [KO_COLOUR_NOUN[colour], str(n)]

    return finish("tool_multi", lang, state, opening, calls, answer)


def convert_then_add_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    value, extra = int(rng.integers(2, 10)), int(rng.integers(10, 500))
    if lang == "en":
        opening = f"I walked {value} km and then {extra} m more. How many metres is that?"
    else:
        opening = f"{value}킬로미터를 걷고 {extra}미터를 더 걸었어요. 모두 몇 미터예요?"
    calls = [
        ("convert_units", {"value": value, "from_unit": "km", "to_unit": "m"}),
        lambda r: ("calculator", {"expression": f"{r[0]['value']} + {extra}"}),
    ]

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        total = results[-1]["result"]
        return (f"That is {total} m." if lang == "en" else f"모두 {total}미터예요."), [str(total)]

    return finish("tool_multi", lang, state, opening, calls, answer)


DIALOGUE_LINES = {
    "convert": {
        "en": ("Can you convert something for me?", "Sure. What value and unit?",
               "{value} {source}.", "Into which unit?", "Into {target}."),
        "ko": ("단위를 바꿔 줄 수 있어요?", "네. 어떤 값과 단위예요?",
               "{value}{source}요.", "어떤 단위로 바꿀까요?", "{target}로요."),
    },
    "count": {
        "en": ("Please count some objects in the scene.", "Which colour should I count?",
               "The {colour} ones."),
        "ko": ("장면의 도형을 세어 주세요.", "어떤 색을 셀까요?", "{colour} 도형이요."),
    },
    "calculate": {
        "en": ("I need a calculation.", "What should I calculate?", "{expression}"),
        "ko": ("계산이 필요해요.", "무엇을 계산할까요?", "{expression}"),
    },
}  # fmt: skip


def _reveals(lines: tuple[str, ...], **slots: Any) -> tuple[str, list[tuple[str, str]]]:
    """The opening message and the (assistant asks, user reveals) pairs of a dialogue."""
    pairs = [(lines[i], lines[i + 1].format(**slots)) for i in range(1, len(lines), 2)]
    return lines[0], pairs


def dialogue_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    topic = pick(rng, sorted(DIALOGUE_LINES))
    lines = DIALOGUE_LINES[topic][lang]
    if topic == "convert":
        value, source, target = conversion(rng)
        names = UNIT_NAMES[lang]
        opening, reveals = _reveals(lines, value=value, source=names[source], target=names[target])
        calls = [("convert_units", {"value": value, "from_unit": source, "to_unit": target})]
        answer = convert_answer(value, source, target)
    elif topic == "count":
        colour = pick(rng, [o["colour"] for o in state["objects"]])
        opening, reveals = _reveals(lines, colour=colour_word(colour, lang))
        calls = [("count_objects", {"colour": colour})]
        answer = count_answer(lang, colour)
    else:
        expression = sample_expression(rng)
        opening, reveals = _reveals(lines, expression=expression)
        calls = [("calculator", {"expression": expression})]
        answer = calc_answer(expression)
    return finish("tool_dialogue", lang, state, opening, calls, answer, reveals)


MULTI_BUILDERS = (sum_of_counts_episode, colour_then_count_episode, convert_then_add_episode)
