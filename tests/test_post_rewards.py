"""The reward registry: each verifiable reward scores right and wrong answers of the toy world."""

import numpy as np
import pytest
from PIL import Image

from training.post import rewards
from training.toyworld.language import answer_candidates, describe
from training.toyworld.scenes import Scene, render_scene
from training.toyworld.speech import GENERATION_VOICES

SCENE = Scene.from_attributes(
    [
        {"shape": "circle", "colour": "red", "size": "big", "position": "left"},
        {"shape": "square", "colour": "blue", "size": "small", "position": "right"},
    ]
)
META = {"attributes": SCENE.to_meta()}


def test_exact_match_ignores_case_and_punctuation():
    score = rewards.get("exact_match")
    assert score("Two.", {"answer": "two"}) == 1.0
    assert score("three", {"answer": "two"}) == 0.0


def test_format_rule_by_default_and_by_pattern():
    score = rewards.get("format")
    assert score("a red circle", {}) == 1.0
    assert score("a red <|image|> circle", {}) == 0.0
    assert score("   ", {}) == 0.0
    assert score("42", {"format": r"\d+"}) == 1.0
    assert score("forty-two", {"format": r"\d+"}) == 0.0


def test_caption_attributes_reads_the_caption_back():
    score = rewards.get("caption_attributes")
    assert score(describe(SCENE, "en"), META) == 1.0
    assert score(describe(SCENE, "ko"), META) == 1.0
    wrong = describe(Scene.from_attributes([dict(META["attributes"][0], colour="green")]), "en")
    assert 0.0 < score(wrong, META) < 1.0


def test_drawn_objects_uses_the_pixel_checker():
    score = rewards.get("drawn_objects")
    assert score(render_scene(SCENE), META) == 1.0
    assert score(Image.new("RGB", (64, 64), (240, 240, 240)), META) == 0.0


def test_spoken_answer_uses_the_speech_checker():
    meta = {"answer": answer_candidates("count", "en")[1]}
    meta["answer_candidates"] = answer_candidates("count", "en")
    renderer = rewards._speech_checker().renderer
    voice = GENERATION_VOICES["en"][0]
    right = renderer.render(meta["answer_candidates"][1], voice)
    wrong = renderer.render(meta["answer_candidates"][0], voice)
    score = rewards.get("spoken_answer")
    assert score((right, 16000), meta) == 1.0
    assert score((wrong, 16000), meta) == 0.0


def test_code_tests_runs_the_program_in_the_sandbox():
    score = rewards.get("code_tests")
    meta = {"tests": "assert double(4) == 8\n"}
    assert score("def double(x):\n    return 2 * x\n", meta) == 1.0
    assert score("def double(x):\n    return x\n", meta) == 0.0


def test_mix_weights_registered_rewards():
    mixed = rewards.mix({"exact_match": 1.0, "format": 0.25})
    assert mixed("two", {"answer": "two"}) == pytest.approx(1.25)
    assert mixed("three", {"answer": "two"}) == pytest.approx(0.25)


def test_a_rubric_registered_by_name_mixes_with_rules():
    @rewards.register("test_rubric_length")
    def length_rubric(answer, meta):
        return min(len(answer.split()) / 4, 1.0)

    mixed = rewards.mix({"test_rubric_length": 0.5, "exact_match": 1.0})
    assert mixed("two", {"answer": "two"}) == pytest.approx(1.125)
    with pytest.raises(ValueError, match="already registered"):
        rewards.register("test_rubric_length")(lambda answer, meta: 0.0)


def test_unknown_rewards_and_missing_meta_are_refused():
    with pytest.raises(ValueError, match="unknown reward 'exactmatch'.*exact_match"):
        rewards.mix({"exactmatch": 1.0})
    with pytest.raises(ValueError, match=r"needs meta\['answer'\]"):
        rewards.get("exact_match")("two", {})
    with pytest.raises(ValueError, match="at least one reward"):
        rewards.mix({})


def test_fingerprint_changes_with_weights_not_with_order():
    a = rewards.fingerprint({"exact_match": 1.0, "format": 0.1})
    assert a == rewards.fingerprint({"format": 0.1, "exact_match": 1})
    assert a != rewards.fingerprint({"exact_match": 1.0, "format": 0.2})
    assert np.all([len(h) == 64 for h in a["sources"].values()])
