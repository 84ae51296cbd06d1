"""The demo's ``/generate`` handler batches requests that arrive together: one
``generate_batch`` call per group of equal options, the same answers as one request at a time,
and a bad request fails alone."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from app.backend import DemoBackend  # noqa: E402
from app.batching import RequestBatcher  # noqa: E402
from app.examples import SCENE  # noqa: E402
from omni.presets import build_micro_pipeline  # noqa: E402

# Long enough that every request of a test arrives within it; a batch closes as soon as it
# holds max_batch requests, so the tests never wait for the window to run out.
WINDOW_S = 60.0


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


@pytest.fixture
def batch_sizes(pipe, monkeypatch):
    """The size of every ``generate_batch`` call the pipeline sees."""
    sizes, real = [], pipe.generate_batch

    def counted(requests, *args, **kwargs):
        sizes.append(len(requests))
        return real(requests, *args, **kwargs)

    monkeypatch.setattr(pipe, "generate_batch", counted)
    return sizes


def together(backend, requests):
    """Send ``requests`` (keyword arguments of ``generate``) at once, from as many threads;
    each answer, or the error it raised."""

    def call(request):
        try:
            return backend.generate(**request)
        except gr.Error as error:
            return error

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(call, requests))
    backend.batcher.close()
    return answers


def one_by_one(pipe, requests):
    backend = DemoBackend(pipe, max_batch=1)
    answers = [backend.generate(**request) for request in requests]
    backend.batcher.close()
    return answers


REQUESTS = [
    {"prompt": "hello there", "max_new_tokens": 6},
    {"prompt": "Describe the image.", "files": [str(SCENE)], "max_new_tokens": 6},
    {"prompt": "what colour is the sky", "max_new_tokens": 6},
    {"prompt": "count to three", "max_new_tokens": 6},
]


def test_requests_that_arrive_together_run_as_one_batch_with_the_same_answers(pipe, batch_sizes):
    expected = one_by_one(pipe, REQUESTS)
    assert batch_sizes == [1, 1, 1, 1]
    batch_sizes.clear()
    answers = together(DemoBackend(pipe, max_batch=4, window=WINDOW_S), REQUESTS)
    assert batch_sizes == [4]
    assert [text for text, _, _ in answers] == [text for text, _, _ in expected]


def test_requests_with_other_options_run_in_their_own_batch(pipe, batch_sizes):
    requests = [{**r, "max_new_tokens": 4 + 2 * (i % 2)} for i, r in enumerate(REQUESTS)]
    expected = one_by_one(pipe, requests)
    batch_sizes.clear()
    answers = together(DemoBackend(pipe, max_batch=4, window=WINDOW_S), requests)
    assert sorted(batch_sizes) == [2, 2]
    assert [text for text, _, _ in answers] == [text for text, _, _ in expected]


def test_a_bad_file_in_a_batch_fails_only_its_own_request(pipe, batch_sizes, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture")
    bad_request = {"prompt": "what is this?", "files": [str(corrupt)], "max_new_tokens": 6}
    requests = [REQUESTS[0], bad_request, REQUESTS[2]]
    expected = one_by_one(pipe, [requests[0], requests[2]])
    batch_sizes.clear()
    good, bad, other = together(DemoBackend(pipe, max_batch=3, window=WINDOW_S), requests)
    assert isinstance(bad, gr.Error) and "cannot read corrupt.png as an image" in str(bad)
    assert [good[0], other[0]] == [text for text, _, _ in expected]
    assert batch_sizes == [3, 1, 1, 1]  # the failed batch, then each request alone


def test_the_batcher_refuses_an_empty_batch_size(pipe):
    with pytest.raises(ValueError, match="max_batch must be at least 1, got 0"):
        RequestBatcher(pipe, max_batch=0)
