"""Compiled decode (static KV cache + torch.compile'd step, ``compiled=True``): the same greedy
answers as the eager loop, one request or a padded batch."""

import pytest

from omni.compiled import static_cache
from omni.presets import build_micro_pipeline

REQUESTS = ["hello", "a big red circle on the left of the canvas", "star"]


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-hcx-omni")


def test_compiled_greedy_equals_eager_greedy(pipe):
    eager = pipe.generate("a big red circle", max_new_tokens=20, speculative=False)
    compiled = pipe.generate("a big red circle", max_new_tokens=20, compiled=True)
    assert compiled.tokens == eager.tokens
    assert compiled.usage["drafts"] == 0  # compiled decoding is plain decoding


def test_compiled_batched_greedy_equals_eager_batched_greedy(pipe):
    eager = pipe.generate_batch(REQUESTS, max_new_tokens=12, speculative=False)
    compiled = pipe.generate_batch(REQUESTS, max_new_tokens=12, compiled=True)
    assert [r.tokens for r in compiled] == [r.tokens for r in eager]


def test_the_static_cache_is_sized_to_a_power_of_two(pipe):
    assert static_cache(pipe.model, 300).layers[0].max_cache_len == 512
    assert static_cache(pipe.model, 10).layers[0].max_cache_len == 256


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(compiled=True, speculative=True), "compiled=True decodes plainly"),
        (dict(compiled="yes"), "compiled must be True or False"),
    ],
)
def test_bad_compiled_options_are_value_errors(pipe, options, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate("hi", max_new_tokens=4, **options)
