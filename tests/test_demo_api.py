"""The demo served on a loopback port, driven through its ``/generate`` API with gradio_client.

The model is a saved random micro pipeline: the answers are meaningless, so the checks are on
what every answer must be (type, size, sample rate) and on the errors bad files give.
"""

import os
import socket

import numpy as np
import pytest
import soundfile
from PIL import Image as PILImage

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import omni  # noqa: E402
from app.conversation import to_omni_chat  # noqa: E402
from app.demo import build_demo, launch  # noqa: E402
from app.examples import QUESTION, SCENE, SENTENCE  # noqa: E402
from omni.presets import build_micro_pipeline  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("micro-model")
    build_micro_pipeline("micro-llama").save_pretrained(folder)
    return omni.load(folder)


@pytest.fixture(scope="module")
def client(pipe):
    demo = build_demo(pipe, "micro-llama (random)")
    url = launch(demo, port=free_port(), block=False)
    assert url.startswith("http://127.0.0.1:")
    yield Client(url, verbose=False, analytics_enabled=False)
    demo.close()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture")
    (folder / "notes.wav").write_text("this is a text file, not a recording")
    soundfile.write(folder / "silence.wav", np.zeros(0, dtype=np.float32), 16000)
    return folder


def ask(client, prompt="", files=(), **options):
    files = [handle_file(str(path)) for path in files]
    return client.predict(prompt=prompt, files=files, api_name="/generate", **options)


def direct_answer(pipe, prompt, files=(), **options):
    """What the Python API answers to the same chat the page builds."""
    chat = to_omni_chat([], prompt, [str(path) for path in files])
    return pipe.generate(chat, "text", **options).text


@pytest.mark.parametrize(
    ("prompt", "files"),
    [("hello there", []), ("Describe the image.", [SCENE]), ("Transcribe the audio.", [SENTENCE])],
    ids=["text->text", "image->text", "audio->text"],
)
def test_text_answers_equal_the_python_api(client, pipe, prompt, files):
    text, image, audio = ask(client, prompt, files, max_new_tokens=8)
    assert isinstance(text, str) and image is None and audio is None
    assert text == direct_answer(pipe, prompt, files, max_new_tokens=8)


def test_requests_sent_together_each_get_their_own_python_api_answer(client, pipe):
    """Sent at once, they may share a batch on the server; each caller gets its own answer."""
    prompts = ["hello there", "what colour is the sky", "count to three", "one more thing"]
    jobs = [
        client.submit(prompt=p, files=[], max_new_tokens=8, api_name="/generate") for p in prompts
    ]
    expected = [direct_answer(pipe, prompt, max_new_tokens=8) for prompt in prompts]
    assert [job.result()[0] for job in jobs] == expected


def test_image_and_spoken_question_to_text(client):
    text, _, _ = ask(client, "Answer the spoken question.", [SCENE, QUESTION], max_new_tokens=6)
    assert isinstance(text, str) and len(text) > 0


def test_text_to_image_is_a_png_of_the_decoder_size(client, pipe):
    text, image, audio = ask(
        client, "Draw this: a red circle", out_modality="image", max_new_tokens=90, steps=1
    )
    assert audio is None and image is not None
    picture = PILImage.open(image)
    assert picture.format == "PNG" and picture.mode == "RGB"
    assert max(picture.size) == pipe.decoders["image"].config.image_size
    assert min(picture.size) % 16 == 0


def test_text_to_audio_in_a_named_voice_is_a_wav(client, pipe):
    text, image, audio = ask(
        client, "Say this aloud: hello", out_modality="audio", voice="en-m1", max_new_tokens=30
    )
    assert image is None and audio is not None
    wave, rate = soundfile.read(audio, dtype="float32")
    assert rate == pipe.decoders["audio"].sample_rate
    assert wave.ndim == 1 and wave.size > 0 and wave.size % 640 == 0
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 1.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("corrupt.png", "cannot read corrupt.png as an image"),
        ("notes.wav", "unsupported file type: notes.wav is not an image, audio or video file"),
        ("silence.wav", "silence.wav is empty (0 seconds of audio)"),
    ],
)
def test_a_bad_file_gives_a_clear_error_and_the_next_request_works(
    client, bad_files, name, expected
):
    with pytest.raises(AppError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        ask(client, "what is this?", [bad_files / name], max_new_tokens=4)
    text, _, _ = ask(client, "and now?", max_new_tokens=4)
    assert isinstance(text, str) and len(text) > 0


def test_an_empty_request_is_refused_with_a_message(client):
    with pytest.raises(AppError, match="the message is empty"):
        ask(client, "   ")


def test_an_unknown_voice_is_refused(client):
    with pytest.raises(AppError, match="Value: nobody is not in the list of choices"):
        ask(client, "hi", out_modality="audio", voice="nobody", max_new_tokens=30)


def test_an_upload_over_the_size_limit_is_refused(client, tmp_path):
    big = tmp_path / "big.wav"
    soundfile.write(big, np.zeros(16000 * 700, dtype=np.float32), 16000)  # 22.4 MB of PCM_16
    # gradio_client reads the limit from the server's config and refuses before uploading.
    with pytest.raises(ValueError, match="exceeds the maximum file size of 20971520 bytes"):
        ask(client, "what is this?", [big], max_new_tokens=4)
    text, _, _ = ask(client, "and now?", max_new_tokens=4)
    assert isinstance(text, str)
