"""The demo's chat turn without a browser: the message format, streaming, history, errors."""

import argparse
import os
import warnings
from dataclasses import astuple

import numpy as np
import pytest
import soundfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app.backend import EMPTY_BOX, DemoBackend, Settings  # noqa: E402
from app.cli import add_arguments, run  # noqa: E402
from app.conversation import MAX_HISTORY_MESSAGES, parse_message, to_omni_chat  # noqa: E402
from app.examples import QUESTION, SCENE, SENTENCE, example_rows  # noqa: E402
from omni.inputs import to_sample  # noqa: E402
from omni.presets import build_micro_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def backend():
    return DemoBackend(build_micro_pipeline("micro-llama"))


def settings(**changes):
    fields = {"max_new_tokens": 12, **changes}
    return astuple(Settings(**fields))


def turn(backend, message, history=(), **changes):
    return list(backend.chat(message, list(history), *settings(**changes)))


def test_an_empty_message_is_refused():
    with pytest.raises(ValueError, match="the message is empty"):
        parse_message({"text": "  ", "files": []})


def test_files_come_before_the_text_and_history_is_kept():
    history = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "file", "file": {"path": str(SCENE)}}]},
    ]
    chat = to_omni_chat(history, "and this?", [str(SENTENCE)], system="be brief")
    assert chat == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": ["hi"]},
        {"role": "assistant", "content": [str(SCENE)]},
        {"role": "user", "content": [str(SENTENCE), "and this?"]},
    ]


def test_only_the_recent_history_is_sent():
    history = [{"role": "user", "content": [f"turn {i}"]} for i in range(20)]
    chat = to_omni_chat(history, "last", [], system="")
    assert len(chat) == MAX_HISTORY_MESSAGES + 1 and chat[0]["content"] == ["turn 12"]


def test_every_example_is_a_valid_request():
    rows = example_rows(["en-f1", "en-m1"], ["text", "image", "audio", "auto"])
    assert [row[1] for _, row in rows] == ["text", "image", "text", "audio", "audio"]
    assert all(row[2] == "en-m1" for _, row in rows)
    for _, (message, _, _) in rows:
        sample = to_sample(to_omni_chat([], *parse_message(message)))
        assert sample.turns[-1].role == "user"
    without_speech = example_rows([], ["text", "auto"])
    assert [row[:2] for _, row in without_speech] == [rows[0][1][:2], rows[2][1][:2]]
    assert SCENE.stat().st_size < 10_000 and QUESTION.stat().st_size < 100_000


def test_text_streams_into_the_chat_and_is_offered_for_download(backend):
    outputs = turn(backend, {"text": "Describe the image.", "files": [str(SCENE)]})
    history, box, _, _ = outputs[0]
    assert box == EMPTY_BOX and [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"][0] == {"path": str(SCENE)}
    partial = [o[0][-1]["content"][-1] for o in outputs[1:-1] if isinstance(o[0], list)]
    final, _, _, downloads = outputs[-1]
    answer = final[-1]["content"][-1]
    assert len(partial) >= 2 and all(answer.startswith(text) for text in partial)
    assert [p.rsplit("/", 1)[-1] for p in downloads] == ["answer.txt"]
    assert open(downloads[0], encoding="utf-8").read() == answer


def test_audio_streams_live_and_lands_in_the_chat(backend):
    outputs = turn(
        backend, "Say this aloud: hi", out_modality="audio", voice="en-m1", max_new_tokens=30
    )
    chunks = [o[2] for o in outputs[1:] if isinstance(o[2], tuple)]
    final, _, _, downloads = outputs[-1]
    wave, rate = soundfile.read(final[-1]["content"][0]["path"], dtype="int16")
    assert chunks and all(c[0] == rate and c[1].dtype == np.int16 for c in chunks)
    assert np.array_equal(np.concatenate([c[1] for c in chunks]), wave)
    assert downloads == [final[-1]["content"][0]["path"]]


def test_a_second_turn_sends_the_first(backend):
    first = turn(backend, "hello", max_new_tokens=6)[-1][0]
    second = turn(backend, "again", history=first, max_new_tokens=6)[-1][0]
    assert second[:2] == first and [m["role"] for m in second] == ["user", "assistant"] * 2


def test_a_bad_file_undoes_the_turn_and_warns(backend, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    history = [{"role": "user", "content": ["hi"]}, {"role": "assistant", "content": ["yo"]}]
    message = {"text": "what is it?", "files": [str(bad)]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = turn(backend, message, history)
    assert outputs == [(history, message, None, outputs[0][3])]
    assert any("unsupported file type: notes.wav is not" in str(w.message) for w in caught)


def test_the_cli_says_how_to_start_without_a_default_model(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    with pytest.raises(ValueError, match="not a saved Omni model"):
        run(parser.parse_args(["--model", str(tmp_path)]))
