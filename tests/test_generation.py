"""omni.generate / generate_batch / stream on a randomly initialised micro pipeline."""

import io
from contextlib import contextmanager

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

import omni
from decoders.vision import image_shape
from omni.blocks import BlockCodec
from omni.presets import build_micro_pipeline


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


@pytest.fixture(scope="module")
def files(tmp_path_factory, red_square_module):
    folder = tmp_path_factory.mktemp("inputs")
    red_square_module.save(folder / "square.png")
    t = np.arange(8000) / 16000
    soundfile.write(
        folder / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000
    )
    (folder / "notes.txt").write_text("not media")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    return folder


@pytest.fixture(scope="module")
def red_square_module():
    image = PILImage.new("RGB", (64, 64), (240, 240, 240))
    image.paste((220, 30, 30), (16, 16, 48, 48))
    return image


def wave(seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


INPUT_KINDS = {
    "text": lambda f, img: "what is this?",
    "pil image": lambda f, img: img,
    "image path": lambda f, img: str(f / "square.png"),
    "audio path": lambda f, img: f / "tone.wav",
    "rate-array pair": lambda f, img: (22050, wave(0.4, 22050)),
    "list": lambda f, img: [img, "describe it"],
    "chat": lambda f, img: [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [img, "what colour?"]},
    ],
    "image bytes": lambda f, img: (f / "square.png").read_bytes(),
}


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_every_input_kind_gives_text(pipe, files, red_square_module, kind):
    result = pipe.generate(INPUT_KINDS[kind](files, red_square_module), max_new_tokens=6)
    assert isinstance(result.text, str) and 1 <= len(result.tokens) <= 6
    assert all(
        t < pipe.layout.text_size or pipe.layout.lookup(t)[0] == "special" for t in result.tokens
    )
    assert result.usage["prompt_tokens"] > 0 and result.timings["total_s"] > 0


def test_waveform_with_sample_rate(pipe):
    result = pipe.generate(torch.from_numpy(wave()), sample_rate=8000, max_new_tokens=4)
    assert len(result.tokens) <= 4


def test_image_answer_is_a_decoded_image_of_the_ratio_size(pipe):
    result = pipe.generate("draw a red circle", "image", max_new_tokens=90, steps=2, seed=3)
    (block,) = BlockCodec(pipe.layout).blocks(result.tokens)
    height, width = image_shape(block.ratio, 64)
    assert isinstance(result.image, PILImage.Image) and result.image.size == (width, height)
    assert len(result.tokens) == BlockCodec(pipe.layout).image_block_length + 1
    assert result.tokens[-1] == pipe.layout.special_id("<|endofturn|>")


def test_audio_answer_is_a_finite_float32_waveform(pipe):
    result = pipe.generate("say hello", "audio", max_new_tokens=40, voice="en-m1")
    rate, samples = result.audio
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    units = sum(1 for t in result.tokens if pipe.layout.lookup(t)[0] == "audio")
    assert samples.size == units * 640 and np.isfinite(samples).all()


def test_voices_change_the_audio(pipe, files):
    kwargs = dict(max_new_tokens=30, speculative=False)
    a = pipe.generate("say hi", "audio", voice="en-f1", **kwargs)
    b = pipe.generate("say hi", "audio", voice="en-m1", **kwargs)
    c = pipe.generate("say hi", "audio", voice=str(files / "tone.wav"), **kwargs)
    assert a.tokens == b.tokens == c.tokens
    assert not np.allclose(a.audio[1], b.audio[1]) and not np.allclose(a.audio[1], c.audio[1])


@contextmanager
def favouring(pipe, name: str, boost: float = 100.0):
    """The model strongly prefers (or, with a negative ``boost``, avoids) the special token
    ``name`` wherever it is allowed."""
    token = pipe.layout.special_id(name)

    def shift(_module, _args, output):
        output.logits[..., token] += boost
        return output

    hook = pipe.model.register_forward_hook(shift)
    try:
        yield
    finally:
        hook.remove()


def test_auto_mode_opens_and_closes_an_image_block(pipe):
    with favouring(pipe, "<|dimg_start|>"):
        result = pipe.generate("anything", "auto", max_new_tokens=100, seed=1, temperature=1.0)
    codec = BlockCodec(pipe.layout)
    assert result.tokens[0] == pipe.layout.special_id("<|dimg_start|>")
    assert pipe.layout.special_id("<|dimg_end|>") == result.tokens[codec.image_block_length - 1]
    # Once the image is closed, another no longer fits the 100-token budget: exactly one.
    assert len(result.images) == 1 and isinstance(result.images[0], PILImage.Image)
    assert result.tokens.count(pipe.layout.special_id("<|dimg_start|>")) == 1


def test_thinking_is_kept_apart_from_the_answer_text(pipe):
    from omni.decoding import DecodeStats
    from omni.planning import finish, plan

    def encode(text: str) -> list[int]:
        return pipe.tokenizer.encode(text, add_special_tokens=False)

    request = plan(pipe, ["why?"], "text", {"think": True, "max_new_tokens": 40})
    answer = [*encode("red is warm"), pipe.layout.special_id("</think>"), *encode("it is red")]
    result = finish(
        pipe, [*answer, pipe.layout.special_id("<|endofturn|>")], DecodeStats(), request
    )
    assert result.thinking == "red is warm" and result.text == "it is red"


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_thinking_media_answers_close_the_think_block_first(pipe, modality):
    options = dict(think=True, max_new_tokens=95, steps=1, seed=2, temperature=1.0)
    result = pipe.generate("draw or say it", modality, **options)
    close = result.tokens.index(pipe.layout.special_id("</think>"))
    opening = "<|dimg_start|>" if modality == "image" else "<|daud_start|>"
    assert result.tokens[close + 1] == pipe.layout.special_id(opening)
    assert result.text == ""
    reasoning = pipe.tokenizer.decode(result.tokens[:close], skip_special_tokens=True)
    assert result.thinking == reasoning and result.thinking.strip()
    assert (result.image if modality == "image" else result.audio) is not None


def test_batched_greedy_equals_one_at_a_time(pipe, red_square_module):
    requests = ["hello", [red_square_module, "what is it?"], (16000, wave(0.3))]
    batched = pipe.generate_batch(requests, max_new_tokens=8)
    single = [pipe.generate(r, max_new_tokens=8, speculative=False) for r in requests]
    assert [r.tokens for r in batched] == [r.tokens for r in single]


def test_streamed_text_joins_to_the_full_text(pipe):
    events = list(pipe.stream("tell me a story", max_new_tokens=16, speculative=False))
    assert events[-1].kind == "done"
    streamed = "".join(e.text for e in events if e.kind == "text")
    assert (
        streamed
        == events[-1].result.text
        == pipe.generate("tell me a story", max_new_tokens=16).text
    )


def test_streamed_audio_joins_to_the_full_audio(pipe):
    kwargs = dict(max_new_tokens=40, voice="en-f1", speculative=False)
    events = list(pipe.stream("speak", "audio", **kwargs))
    chunks = [e.audio[1] for e in events if e.kind == "audio"]
    whole = pipe.generate("speak", "audio", **kwargs).audio[1]
    assert chunks and np.sqrt(np.mean((np.concatenate(chunks) - whole) ** 2)) < 1e-3


def test_streamed_audio_starts_before_the_last_unit_in_the_callers_thread(pipe):
    import threading

    forwards: list[int] = []
    hook = pipe.model.register_forward_pre_hook(lambda *_: forwards.append(1))
    threads_before, first_audio, threads_seen = threading.active_count(), None, set()
    try:
        with favouring(pipe, "<|daud_end|>", -100.0):  # a long block: ends on the budget
            for event in pipe.stream("speak", "audio", max_new_tokens=40, speculative=False):
                threads_seen.add(threading.active_count())
                if event.kind == "audio" and first_audio is None:
                    first_audio = len(forwards)
    finally:
        hook.remove()
    units = sum(1 for t in event.result.tokens if pipe.layout.lookup(t)[0] == "audio")
    assert units > 30 and first_audio is not None and first_audio < len(forwards) - 20
    assert threads_seen == {threads_before}  # no decode or vocoder thread of its own


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(
        st.sampled_from(["red", "big", "circle", "왼쪽에", "star", "the"]), min_size=1, max_size=6
    )
)
def test_speculative_greedy_equals_plain_greedy(pipe, words):
    prompt = " ".join(words)
    pipe.speculation.clear()  # no acceptance history: this request drafts from its first step
    plain = pipe.generate(prompt, max_new_tokens=16, speculative=False)
    fast = pipe.generate(prompt, max_new_tokens=16, speculative=True)
    assert fast.tokens == plain.tokens
    assert fast.usage["drafts"] > 0


@pytest.mark.parametrize("backbone", ["micro-k-exaone", "micro-solar-open"])
def test_speculative_greedy_on_moe_backbones(backbone):
    moe = build_micro_pipeline(backbone)
    for prompt in ("a big red circle", "왼쪽에 큰 빨간 원"):
        plain = moe.generate(prompt, max_new_tokens=20, speculative=False)
        assert moe.generate(prompt, max_new_tokens=20).tokens == plain.tokens
    image = moe.generate("draw", "image", max_new_tokens=80, steps=1, speculative=False)
    assert moe.generate("draw", "image", max_new_tokens=80, steps=1).tokens == image.tokens


def test_speculative_sampling_is_reproducible_and_well_formed(pipe):
    a = pipe.generate(
        "hi", "image", temperature=1.0, top_k=20, top_p=0.9, seed=7, max_new_tokens=80, steps=1
    )
    b = pipe.generate(
        "hi", "image", temperature=1.0, top_k=20, top_p=0.9, seed=7, max_new_tokens=80, steps=1
    )
    assert a.tokens == b.tokens and a.image is not None


def test_module_level_api_with_a_saved_folder(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    result = omni.generate("hello", model=tmp_path, max_new_tokens=5)
    assert result.tokens == pipe.generate("hello", max_new_tokens=5).tokens


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda p, f: p.generate(str(f / "notes.txt")), "unsupported file type"),
        (lambda p, f: p.generate(str(f / "broken.png")), "cannot read .* as an image"),
        (lambda p, f: p.generate(str(f / "missing.png")), "no such file"),
        (lambda p, f: p.generate("hi", out_modality="video"), "out_modality must be one of"),
        (lambda p, f: p.generate("hi", "image", max_new_tokens=10), "too small to close a image"),
        (lambda p, f: p.generate(np.zeros(100, np.float32)), "needs sample_rate"),
        (lambda p, f: p.generate((16000, np.zeros(0, np.float32))), "empty"),
        (lambda p, f: p.generate("hi", colour="red"), "unknown generation options: colour"),
        (
            lambda p, f: p.generate("hi", "audio", voice="nobody", max_new_tokens=20),
            "unknown speaker",
        ),
        (lambda p, f: omni.load(f / "nowhere"), "is not a folder"),
    ],
)
def test_bad_input_is_a_clear_value_error(pipe, files, call, message):
    with pytest.raises(ValueError, match=message):
        call(pipe, files)


def test_model_without_encoder_rejects_that_input(red_square_module):
    from omni.pipeline import OmniPipeline
    from omni.presets import build_micro

    model, processor = build_micro("micro-llama", encoders={})
    text_only = OmniPipeline(model, processor.tokenizer)
    with pytest.raises(ValueError, match="no image encoder"):
        text_only.generate(red_square_module)
    with pytest.raises(ValueError, match="no audio decoder"):
        text_only.generate("hi", "audio")


def test_wav_bytes_are_audio(pipe, files):
    buffer = io.BytesIO()
    soundfile.write(buffer, wave(0.3), 16000, format="WAV")
    assert pipe.generate(buffer.getvalue(), max_new_tokens=3).usage["prompt_tokens"] > 10


def test_generate_cli_writes_png_and_wav(pipe, files, tmp_path):
    from omni.cli import main

    folder = tmp_path / "model"
    pipe.save_pretrained(folder)
    png, wav = tmp_path / "out.png", tmp_path / "out.wav"
    args = [
        "generate",
        "--model",
        str(folder),
        "--input",
        str(files / "square.png"),
        "--input",
        "draw it",
    ]
    assert main([*args, "--out-modality", "image", "--output", str(png), "--steps", "1"]) == 0
    assert PILImage.open(png).mode == "RGB"
    assert (
        main([*args, "--out-modality", "audio", "--output", str(wav), "--max-new-tokens", "20"])
        == 0
    )
    samples, rate = soundfile.read(wav)
    assert rate == 16000 and samples.size > 0
    assert main(["generate", "--model", str(folder), "--input", str(files / "notes.txt")]) == 2


def test_concurrent_requests_do_not_mix(pipe):
    import threading

    prompts = ["hello there", "a big red circle on the left"]
    expected = [pipe.generate(p, max_new_tokens=12).tokens for p in prompts]
    results: dict[int, list[int]] = {}

    def answer(index: int) -> None:
        results[index] = pipe.generate(prompts[index % 2], max_new_tokens=12).tokens

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(4)] == [expected[i % 2] for i in range(4)]
