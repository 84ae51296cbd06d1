"""Episodes around the novel tools: tools never seen in training, met by their schema alone."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.agentic.environments import State
from training.agentic.episodes import Answer, Episode, finish, pick
from training.toyworld.language import KO_COLOUR_NOUN, KO_SHAPE, josa
from training.toyworld.scenes import SHAPES


def said(en: str, ko: str, lang: str, field: str) -> Answer:
    """An answer function: the sentence in ``lang`` with the first result's ``field`` in it,
    which is also the key a correct answer must state."""

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        value = str(results[0][field])
        return (en if lang == "en" else ko).format(value), [value]

    return answer


def area_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    width, height = int(rng.integers(2, 20)), int(rng.integers(2, 20))
    opening = (
        f"What is the area of a {width} by {height} rectangle?"
        if lang == "en"
        else f"가로 {width}, 세로 {height}인 직사각형의 넓이는 얼마예요?"
    )
    answer = said("The area is {}.", "넓이는 {}이에요.", lang, "area")
    calls = [("rectangle_area", {"width": width, "height": height})]
    return finish("tool_call", lang, state, opening, calls, answer)


def sides_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    shape = pick(rng, SHAPES)
    opening = (
        f"How many sides does a {shape} have?"
        if lang == "en"
        else f"{josa(KO_SHAPE[shape], '은', '는')} 변이 몇 개예요?"
    )
    answer = said("It has {} sides.", "변이 {}개예요.", lang, "sides")
    return finish("tool_call", lang, state, opening, [("count_sides", {"shape": shape})], answer)


def colours_episode(rng: np.random.Generator, lang: str, state: State) -> Episode:
    opening = "Which colours are in the scene?" if lang == "en" else "장면에 어떤 색이 있어요?"

    def answer(results: list[dict[str, Any]]) -> tuple[str, list[str]]:
        words = [c if lang == "en" else KO_COLOUR_NOUN[c] for c in results[0]["colours"]]
        if lang == "en":
            return f"The colours are {' and '.join(words)}.", words
        return f"{', '.join(words)}이 있어요.", words

    return finish("tool_call", lang, state, opening, [("list_colours", {})], answer)


NOVEL_BUILDERS = (area_episode, sides_episode, colours_episode)
