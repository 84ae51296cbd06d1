"""Language: exact en/ko captions, questions, answers; the parser reads every caption back."""

import itertools

import numpy as np
import pytest

from training.toyworld.language import (
    LANGS,
    QUESTION_TYPES,
    answer_candidates,
    ask,
    caption_candidates,
    describe,
    parse_caption,
)
from training.toyworld.scenes import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    ObjectAttrs,
    Scene,
    SceneObject,
    sample_scene,
)


def _scene(*objects):
    return Scene(tuple(SceneObject(*o, 0.5, 0.5, 0.1) for o in objects), (240, 240, 240), 0)


def test_examples_from_the_issue():
    scene = _scene(("circle", "red", "big", "left"))
    assert describe(scene, "en") == "a big red circle on the left"
    assert describe(scene, "ko") == "왼쪽에 큰 빨간 원"
    star = _scene(("star", "blue", "small", "top"))
    assert describe(star, "ko", style=1) == "위쪽에 작은 파란 별이 있어요"


def test_two_objects_use_korean_particles():
    scene = _scene(("circle", "red", "big", "left"), ("star", "blue", "small", "top"))
    assert describe(scene, "ko") == "왼쪽에 큰 빨간 원과 위쪽에 작은 파란 별"
    assert describe(scene, "ko", 1) == "왼쪽에 큰 빨간 원이 있고 위쪽에 작은 파란 별이 있어요"
    assert describe(scene, "en", 1) == (
        "there is a big red circle on the left and a small blue star at the top"
    )


def test_parser_reads_back_every_single_object_caption():
    for attrs in itertools.product(SHAPES, COLOURS, SIZES, POSITIONS):
        scene = _scene(attrs)
        for lang, style in itertools.product(LANGS, (0, 1)):
            assert parse_caption(describe(scene, lang, style)) == {ObjectAttrs(*attrs)}


def test_parser_reads_back_random_two_object_captions():
    rng = np.random.default_rng(0)
    for _ in range(300):
        scene = sample_scene(rng, n_objects=2)
        for lang, style in itertools.product(LANGS, (0, 1)):
            assert parse_caption(describe(scene, lang, style)) == scene.attributes


def test_parser_tolerates_word_order_particles_and_synonyms():
    expected = {
        ObjectAttrs("circle", "red", "big", "left"),
        ObjectAttrs("star", "blue", "small", "top"),
    }
    assert (
        parse_caption("On the left, a large red circle, and a little blue star at the top.")
        == expected
    )
    assert parse_caption("빨간색 큰 원이 왼쪽에 있고 파랑 작은 별은 위에 있어요") == expected
    assert parse_caption("a red circle") == {ObjectAttrs("circle", "red", None, None)}
    assert parse_caption("nothing to see") == set()


def test_questions_and_answers_in_both_languages():
    scene = _scene(("triangle", "green", "small", "centre"), ("square", "orange", "big", "right"))
    assert ask(scene, "colour", "en", 1) == (
        "what colour is the shape on the right?",
        "it is orange",
    )
    assert ask(scene, "shape", "ko", 0) == ("가운데에 있는 도형은 무슨 모양이에요?", "삼각형이에요")
    assert ask(scene, "position", "ko", 1) == (
        "큰 주황색 정사각형은 어디에 있어요?",
        "오른쪽에 있어요",
    )
    assert ask(scene, "count", "en") == ("how many shapes are there?", "there are two")
    assert ask(scene, "count", "ko")[1] == "두 개 있어요"
    assert ask(scene, "size", "ko", 0)[1] == "작아요"


def test_every_answer_is_among_its_candidates():
    rng = np.random.default_rng(4)
    for _ in range(50):
        scene = sample_scene(rng)
        for qtype, lang in itertools.product(QUESTION_TYPES, LANGS):
            _, answer = ask(scene, qtype, lang, int(rng.integers(len(scene.objects))))
            assert answer in answer_candidates(qtype, lang)
    assert len(answer_candidates("colour", "ko")) == len(COLOURS)


def test_bad_language_or_question_raise_value_error():
    scene = _scene(("circle", "red", "big", "left"))
    with pytest.raises(ValueError, match="unknown language"):
        describe(scene, "fr")
    with pytest.raises(ValueError, match="unknown question type"):
        ask(scene, "weight", "en")


def test_caption_candidates_differ_from_the_caption_in_one_attribute():
    scene = _scene(("circle", "red", "big", "left"), ("star", "blue", "small", "top"))
    for lang in LANGS:
        candidates = caption_candidates(scene, lang, style=1)
        assert candidates[0] == describe(scene, lang, 1)
        assert len(candidates) == 1 + 2 * (3 + 5 + 1 + 4) == len(set(candidates))
        for other in candidates[1:]:
            (old,) = scene.attributes - parse_caption(other)
            (new,) = parse_caption(other) - scene.attributes
            assert sum(a != b for a, b in zip(old, new)) == 1
