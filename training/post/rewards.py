"""Verifiable rewards, registered by name, so a reward stage is configured by data.

A reward function takes the decoded answer of one response and the sample's ``meta`` record
(the toy world's manifest ``meta``: answer, attributes, candidates, tests...) and returns a
score in [0, 1]. The answer is what the policy's output decodes to: a string for text, a PIL
image for image codes, a ``(wave, sample_rate)`` pair for speech units.

Built in: ``exact_match``, ``format``, ``caption_attributes``, ``drawn_objects`` (the pixel
checker), ``spoken_answer`` (the speech checker) and ``code_tests`` (the sandbox). ``mix``
combines registered rewards with weights, e.g. a correctness reward with a small format term,
or rule-based rewards with a rubric score registered under its own name.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from training.evaluate import SpeechChecker, attribute_accuracy, check_image, exact_match
from training.post.sandbox import code_test_reward
from training.toyworld.language import parse_caption
from training.toyworld.scenes import ObjectAttrs

RewardFn = Callable[[Any, Mapping[str, Any]], float]
_REGISTRY: dict[str, RewardFn] = {}
_SPECIAL_TOKEN = re.compile(r"<\|[^|]*\|>")


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: make ``fn`` available to reward stages as ``name``."""

    def add(fn: RewardFn) -> RewardFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"a reward named {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return add


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> RewardFn:
    if name not in _REGISTRY:
        raise ValueError(f"unknown reward {name!r}; registered rewards: {', '.join(names())}")
    return _REGISTRY[name]


def _meta_field(meta: Mapping[str, Any], field: str, reward: str) -> Any:
    if field not in meta:
        raise ValueError(f"reward {reward!r} needs meta[{field!r}], which this sample lacks")
    return meta[field]


def _expected_objects(meta: Mapping[str, Any], reward: str) -> list[ObjectAttrs]:
    return [ObjectAttrs(**item) for item in _meta_field(meta, "attributes", reward)]


@register("exact_match")
def exact_match_reward(answer: str, meta: Mapping[str, Any]) -> float:
    """1 when the text answer equals meta["answer"] up to case and punctuation."""
    return float(exact_match(answer, _meta_field(meta, "answer", "exact_match")))


@register("format")
def format_reward(answer: str, meta: Mapping[str, Any]) -> float:
    """1 when the answer is well formed: it fully matches meta["format"] (a regular
    expression) where the sample gives one, else it is non-empty and carries no leftover
    special-token markup such as ``<|image|>``."""
    if not isinstance(answer, str):
        return 0.0
    if "format" in meta:
        return float(re.fullmatch(meta["format"], answer.strip()) is not None)
    return float(bool(answer.strip()) and not _SPECIAL_TOKEN.search(answer))


@register("caption_attributes")
def caption_attributes_reward(answer: str, meta: Mapping[str, Any]) -> float:
    """Share of the scene's attributes the caption states right (parsed, English or Korean)."""
    expected = _expected_objects(meta, "caption_attributes")
    return attribute_accuracy(parse_caption(answer), expected)


@register("drawn_objects")
def drawn_objects_reward(answer: Any, meta: Mapping[str, Any]) -> float:
    """Share of the requested attributes the pixel checker reads back from the drawn image."""
    expected = _expected_objects(meta, "drawn_objects")
    return attribute_accuracy(check_image(answer), expected)


@functools.cache
def _speech_checker() -> SpeechChecker:
    return SpeechChecker()  # renders its espeak-ng references lazily and keeps them


@register("spoken_answer")
def spoken_answer_reward(answer: tuple[Any, int], meta: Mapping[str, Any]) -> float:
    """1 when the speech checker hears meta["answer"] among meta["answer_candidates"]."""
    candidates = list(_meta_field(meta, "answer_candidates", "spoken_answer"))
    expected = _meta_field(meta, "answer", "spoken_answer")
    if expected not in candidates:
        raise ValueError(f"meta['answer'] {expected!r} is not among meta['answer_candidates']")
    wave, sample_rate = answer
    return float(
        _speech_checker().pick(wave, sample_rate, candidates) == candidates.index(expected)
    )


@register("code_tests")
def code_tests_reward(answer: str, meta: Mapping[str, Any]) -> float:
    """1 when the program passes meta["tests"] (asserts) in the sandbox, else 0."""
    return code_test_reward(answer, _meta_field(meta, "tests", "code_tests"))


def mix(weights: Mapping[str, float]) -> RewardFn:
    """sum_k w_k * reward_k(answer, meta) over registered rewards, e.g. {"exact_match": 1,
    "format": 0.1}; unknown names are refused here, before any answer is scored."""
    if not weights:
        raise ValueError("mix needs at least one reward name with its weight")
    parts = [(get(name), float(weight)) for name, weight in weights.items()]

    def mixed(answer: Any, meta: Mapping[str, Any]) -> float:
        return sum(weight * fn(answer, meta) for fn, weight in parts)

    return mixed


def fingerprint(weights: Mapping[str, float]) -> dict[str, Any]:
    """What a reward spec depends on: names, weights and each function's source, so a cached
    reward is recomputed when the reward code changes, and only then."""
    sources = {}
    for name in sorted(weights):
        fn = get(name)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = f"{fn.__module__}.{fn.__qualname__}"
        sources[name] = hashlib.sha256(source.encode()).hexdigest()
    return {"weights": {k: float(weights[k]) for k in sorted(weights)}, "sources": sources}
