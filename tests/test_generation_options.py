"""Bad generation options, voices and output paths are ValueErrors naming the problem, raised
before the model decodes a single token."""

import math

import pytest

from omni.options import GenerationOptions
from omni.presets import build_micro_pipeline


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


@pytest.fixture
def forwards(pipe):
    """Counts calls of the model, the image decoder and the vocoder during a test."""
    calls = []
    modules = (pipe.model, pipe.decoders["image"], pipe.decoders["audio"])
    hooks = [m.register_forward_pre_hook(lambda *_: calls.append(1)) for m in modules]
    yield calls
    for hook in hooks:
        hook.remove()


BAD_OPTIONS = [
    ({"temperature": math.nan}, "temperature must be a finite number"),
    ({"temperature": math.inf}, "temperature must be a finite number"),
    ({"temperature": -0.5}, "temperature must be at least 0"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"seed": "abc"}, "seed must be an integer"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": -1}, "seed must be at least 0"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"top_p": math.nan}, "top_p must be a finite number"),
    ({"top_k": -3}, "top_k must be at least 0"),
    ({"top_k": 2.5}, "top_k must be an integer"),
    ({"guidance": math.nan}, "guidance must be a finite number"),
    ({"guidance": -math.inf}, "guidance must be a finite number"),
    ({"steps": 0}, "steps must be at least 1"),
    ({"steps": -2}, "steps must be at least 1"),
    ({"max_new_tokens": 0}, "max_new_tokens must be at least 1"),
    ({"max_new_tokens": "many"}, "max_new_tokens must be an integer"),
    ({"speculative": "yes"}, "speculative must be True, False or None"),
    ({"think": "maybe"}, "think must be True or False"),
    ({"colour": "red"}, "unknown generation options: colour"),
]


@pytest.mark.parametrize("options,message", BAD_OPTIONS)
def test_bad_options_fail_before_decoding(pipe, forwards, options, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate("draw", "image", **{"max_new_tokens": 90, **options})
    with pytest.raises(ValueError, match=message):
        list(pipe.stream("hi", **options))
    assert forwards == []


def test_good_options_pass_the_checks():
    options = GenerationOptions(temperature=0.7, seed=3, top_p=0.9, top_k=5, steps=2)
    assert options.sampling().seed == 3 and options.image_options()["steps"] == 2


def test_an_unknown_voice_name_lists_the_known_ones(pipe, forwards):
    with pytest.raises(ValueError, match="unknown speaker 'nobody'.*en-f1, en-m1"):
        pipe.generate("hi", "audio", voice="nobody", max_new_tokens=20)
    assert forwards == []


@pytest.mark.parametrize("voice", ["missing.wav", "clips/me.flac"])
def test_a_missing_voice_clip_is_no_such_file(pipe, forwards, tmp_path, voice):
    path = str(tmp_path / voice)
    with pytest.raises(ValueError, match="no such file") as error:
        pipe.generate("hi", "audio", voice=path, max_new_tokens=20)
    assert "unknown speaker" not in str(error.value)
    assert forwards == []


def test_output_into_a_missing_folder_fails_before_generating(pipe, tmp_path, capsys, monkeypatch):
    import omni
    from omni.cli import main

    folder = tmp_path / "model"
    pipe.save_pretrained(folder)
    loads = []
    monkeypatch.setattr(omni, "load", lambda *a, **k: loads.append(a) or pipe)
    target = tmp_path / "no" / "such" / "folder" / "out.png"
    code = main(
        ["generate", "--model", str(folder), "--input", "draw", "--output", str(target)]
        + ["--out-modality", "image", "--steps", "1"]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert loads == [] and not target.parent.exists()
