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
