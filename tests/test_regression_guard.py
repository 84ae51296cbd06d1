"""The regression guard on the shipped components: the fixed draw and speech cases pass with
the shipped tokenizers and decoders, and a broken component fails them with a named case."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from decoders.base import CodeDecoder
from tokenizers_mm.base import CodeTokenizer
from training.regression import component_cases, failures, image_round_trip

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def components():
    return (
        CodeTokenizer.from_pretrained(ASSETS / "tokenizers/image"),
        CodeDecoder.from_pretrained(ASSETS / "decoders/image"),
        CodeTokenizer.from_pretrained(ASSETS / "tokenizers/speech"),
        CodeDecoder.from_pretrained(ASSETS / "decoders/vocoder"),
    )


def test_every_fixed_case_passes_on_the_shipped_components(components):
    results = component_cases(*components)
    assert {r.case for r in results} >= {
        "draw: a big red circle on the left",
        "speech: a big red circle on the left",
        "speech: 왼쪽에 큰 빨간 원",
    }
    assert failures(results) == []


def test_a_broken_image_decoder_fails_the_draw_case(components):
    import copy

    image_tokenizer, decoder = components[0], copy.deepcopy(components[1])
    with torch.no_grad():
        decoder.code_embedding.weight.copy_(decoder.code_embedding.weight.roll(7, dims=0))
    result = image_round_trip(image_tokenizer, decoder, "a big red circle on the left")
    assert not result.passed
    assert failures([result])[0].startswith("draw: a big red circle on the left: expected")


@pytest.fixture(scope="module")
def default_model():
    import omni

    return omni.load()  # the shipped default model, assets/default-model


def shipped_scores() -> dict:
    import json

    return json.loads((ASSETS / "default-model/regression.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def default_scores(default_model):
    from training.regression_lm import lm_scores

    return lm_scores(default_model)


def test_every_fixed_lm_case_scores_as_it_did_when_the_default_model_shipped(default_scores):
    from training.regression_lm import compare

    directions = {case.split(":")[0] for case in shipped_scores()}
    assert directions >= {"caption_en", "caption_ko", "vqa", "translate_en_ko", "draw", "tts"}
    assert directions >= {"translate_ko_en", "asr_en", "spoken_vqa", "auto"}
    assert failures(compare(default_scores, shipped_scores())) == []


def test_a_worse_score_fails_the_guard_and_names_the_case():
    from training.regression_lm import compare

    recorded = {"draw: x": {"attribute_accuracy": 0.5}, "asr_en: y": {"cer": 0.3}}
    fine = {"draw: x": {"attribute_accuracy": 0.4}, "asr_en: y": {"cer": 0.4}}
    assert failures(compare(fine, recorded)) == []  # within the tolerance
    worse = {"draw: x": {"attribute_accuracy": 0.3}, "asr_en: y": {"cer": 0.5}}
    lines = failures(compare(worse, recorded))
    assert [line.split(":")[0] for line in lines] == ["draw", "asr_en"]


def test_a_broken_lm_fails_the_guard(default_model):
    import copy

    from training.regression_lm import compare, lm_scores

    broken = copy.deepcopy(default_model)
    embedding = broken.model.get_input_embeddings().weight
    with torch.no_grad():
        embedding.copy_(embedding.roll(11, dims=0))  # every token now reads as another
    assert failures(compare(lm_scores(broken), shipped_scores()))
