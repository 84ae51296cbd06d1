"""What ``omni.generate`` takes: when a string is a file, explicit media segments, integer PCM,
oversized and corrupt media."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image as PILImage

import omni
from omni.inputs import to_sample, to_segment
from omni.presets import build_micro_pipeline
from omni.sequence import Audio, Image, Text, Video


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    PILImage.new("RGB", (32, 32), (200, 30, 30)).save(folder / "square.png")
    (folder / "square").write_bytes((folder / "square.png").read_bytes())  # no suffix
    t = np.arange(8000) / 16000
    soundfile.write(folder / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)), 16000)
    (folder / "bad.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt not really")
    (folder / "sub").mkdir()
    write_png_header(folder / "huge.png", 20000, 20000)
    write_png_header(folder / "large.png", 12000, 12000)  # over PIL's limit, under twice it
    return folder


def write_png_header(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width x height`` pixels but holds none (a few dozen bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


# --- when a string is a file -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Is it red/green. Which one?",
        "I/O is slow. Why?",
        "and/or",
        "v1.2",
        "describe cat.png please",
        "e.g.",
        "a/" + "x" * 300,  # a name longer than any file system holds
    ],
)
def test_text_with_slashes_and_dots_is_text(text):
    assert to_segment(text) == Text(text)


def test_a_question_with_a_slash_is_answered(pipe):
    result = omni.generate("I/O is slow. Why?", model=pipe, max_new_tokens=3)
    assert 1 <= len(result.tokens) <= 3


def test_a_string_naming_an_existing_file_is_that_file_whatever_its_name(files):
    for name in ("square.png", "square"):
        segment = to_segment(str(files / name))
        assert isinstance(segment, Image) and segment.source.size == (32, 32)
    audio = to_segment(str(files / "tone.wav"))
    assert isinstance(audio, Audio) and audio.source[1] == 16000


@pytest.mark.parametrize("name", ["cat.png", "speech.wav", "clip.mp4", "photos/cat.JPG"])
def test_a_missing_media_file_name_alone_is_an_error_naming_it(pipe, name):
    with pytest.raises(ValueError, match=f"no such file: {name}"):
        omni.generate(name, model=pipe)


def test_a_missing_path_in_an_existing_folder_is_an_error(pipe, files):
    with pytest.raises(ValueError, match="no such file: .*/sub/photo$"):
        omni.generate(str(files / "sub" / "photo"), model=pipe)


def test_a_folder_is_not_a_prompt(pipe, files):
    with pytest.raises(ValueError, match="sub is a folder"):
        omni.generate(str(files / "sub"), model=pipe)
    with pytest.raises(ValueError, match="sub is a folder"):
        omni.generate(files / "sub", model=pipe)


def test_a_path_object_always_means_a_file(files):
    with pytest.raises(ValueError, match="no such file: .*notes"):
        to_segment(files / "notes")
    assert isinstance(to_segment(files / "square"), Image)


# --- explicit segments always mean a file ------------------------------------------------


@pytest.mark.parametrize("kind", [Image, Audio, Video])
def test_an_explicit_segment_with_a_missing_file_is_an_error_naming_it(pipe, files, kind):
    missing = str(files / "gone")
    with pytest.raises(ValueError, match=f"no such file: {missing}"):
        omni.generate([kind(missing), "what is it?"], model=pipe)


def test_explicit_segments_are_read_before_the_model_runs(files):
    image = to_segment(Image(str(files / "square"), mode="continuous"))
    assert isinstance(image.source, PILImage.Image) and image.mode == "continuous"
    audio = to_segment(Audio(files / "tone.wav", text="a tone"))
    wave, rate = audio.source
    assert rate == 16000 and wave.dtype == np.float32 and audio.text == "a tone"


# --- integer PCM, oversized and corrupt media ----------------------------------------------


def next_token_logits(pipe, inputs, sample_rate=None):
    batch = pipe.processor(to_sample(inputs, sample_rate), add_generation_prompt=True)
    with torch.no_grad():
        return pipe.model(**batch.model_inputs()).logits[0, -1]


def test_int16_audio_gives_the_same_answer_as_the_same_float_audio(pipe):
    t = np.arange(8000) / 16000
    pcm = np.round(0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    as_float = (16000, pcm.astype(np.float32) / 32768)
    expected = next_token_logits(pipe, as_float)
    assert torch.allclose(next_token_logits(pipe, (16000, pcm)), expected, atol=1e-5)
    from_tensor = next_token_logits(pipe, torch.from_numpy(pcm), sample_rate=16000)
    assert torch.allclose(from_tensor, expected, atol=1e-5)
    answer = pipe.generate(as_float, max_new_tokens=6).tokens
    assert pipe.generate((16000, pcm), max_new_tokens=6).tokens == answer


@pytest.mark.parametrize("form", ["path", "bytes", "segment"])
def test_a_huge_image_is_refused_by_its_size_before_decoding(pipe, files, form):
    huge = files / "huge.png"
    given = {"path": str(huge), "bytes": huge.read_bytes(), "segment": Image(str(huge))}[form]
    with pytest.raises(ValueError, match="too large to read: .*400000000 pixels"):
        omni.generate([given, "what is it?"], model=pipe)


def test_an_image_over_pils_pixel_limit_is_refused_with_its_size(pipe, files):
    refused = pytest.raises(ValueError, match="large.png is too large to read: 12000x12000")
    with pytest.warns(PILImage.DecompressionBombWarning), refused:  # PIL itself only warns
        omni.generate([str(files / "large.png"), "what is it?"], model=pipe)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f: str(f / "bad.wav"), "cannot read audio from .*bad.wav"),
        (lambda f: (f / "bad.wav").read_bytes(), "cannot read audio from the audio bytes"),
        (lambda f: b"\x89PNG\r\n\x1a\nnot an image", "cannot read the image bytes as an image"),
        (lambda f: Audio((f / "bad.wav").read_bytes()), "cannot read audio from the audio bytes"),
        (lambda f: b"plain bytes", "unsupported bytes"),
    ],
)
def test_corrupt_media_is_a_value_error_naming_the_input(pipe, files, make, message):
    with pytest.raises(ValueError, match=message):
        omni.generate([make(files), "what is it?"], model=pipe)
