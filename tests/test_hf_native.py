"""A saved pipeline folder through transformers alone: AutoModelForCausalLM, AutoTokenizer,
the shipped chat template and ``model.generate`` with Omni's constraints as a LogitsProcessor,
checked against the pipeline's own processor and greedy decoding."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from jinja2.exceptions import TemplateError
from PIL import Image as PILImage
from transformers import AutoModelForCausalLM, AutoTokenizer

from omni.chat_template import CHAT_TEMPLATE
from omni.hf import logits_processor, prepare_media
from omni.modeling import OmniForConditionalGeneration
from omni.pipeline import OmniPipeline
from omni.presets import build_micro, build_micro_pipeline
from omni.processor import OmniProcessor
from omni.sequence import Audio, Image, Sample, Text, Turn, Video


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


@pytest.fixture(scope="module")
def folder(pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("omni-hf")
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(folder):
    return AutoModelForCausalLM.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def tokenizer(folder):
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def square():
    image = PILImage.new("RGB", (64, 64), (240, 240, 240))
    image.paste((220, 30, 30), (16, 16, 48, 48))
    return image


def tone(seconds=0.4, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def chat_ids(tokenizer, messages, **kwargs):
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False, **kwargs
    )


def answer(model, ids, out_modality, max_new_tokens, **kwargs):
    ids = torch.tensor([ids]) if isinstance(ids, list) else ids
    processors = logits_processor(model, out_modality, ids.shape[1], max_new_tokens)
    out = model.generate(
        ids, logits_processor=processors, max_new_tokens=max_new_tokens, do_sample=False, **kwargs
    )
    return out[0, ids.shape[1] :].tolist()


CONVERSATION = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "hi!"},
    {"role": "user", "content": [{"type": "text", "text": "draw a red circle"}]},
]
CONVERSATION_TURNS = [
    Turn("system", [Text("be brief")]),
    Turn("user", [Text("hello there")]),
    Turn("assistant", [Text("hi!")]),
    Turn("user", [Text("draw a red circle")]),
]


def test_auto_classes_load_the_folder_with_its_chat_template(model, tokenizer):
    assert isinstance(model, OmniForConditionalGeneration)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert model.generation_config.eos_token_id == model.layout.special_id("<|endofturn|>")
    assert model.generation_config.pad_token_id == model.layout.special_id("<|pad|>")


def test_specials_tokenize_to_their_unified_ids(tokenizer, pipe):
    layout = pipe.layout
    for name in ("<|user|>", "<|endofturn|>", "<think>", "<|image_pad|>", "<|video_end|>"):
        assert tokenizer.convert_tokens_to_ids(name) == layout.special_id(name)
    assert len(tokenizer) == layout.image_offset


def test_chat_template_gives_the_processor_ids_of_a_text_chat(tokenizer, pipe):
    expected = pipe.processor.encode(CONVERSATION_TURNS, add_generation_prompt=True).input_ids
    assert chat_ids(tokenizer, CONVERSATION) == expected


@pytest.mark.parametrize("field", ["thinking", "reasoning_content"])
def test_chat_template_renders_think_blocks_and_enable_thinking(tokenizer, pipe, field):
    messages = [dict(m) for m in CONVERSATION]
    messages[2][field] = "they greet me"
    turns = list(CONVERSATION_TURNS)
    turns[2] = Turn("assistant", [Text("hi!")], think="they greet me")
    expected = pipe.processor.encode(turns, add_generation_prompt=True, think=True).input_ids
    assert chat_ids(tokenizer, messages, enable_thinking=True) == expected
    assert expected[-1] == pipe.layout.special_id("<think>")


def test_chat_template_renders_image_and_audio_slots_as_the_processor(
    tokenizer, model, pipe, square
):
    wave = tone()
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": square},
                {"type": "text", "text": "and this sound?"},
                {"type": "audio", "audio": (16000, wave)},
            ],
        }
    ]
    prepared, media = prepare_media(model, messages)
    sample = Sample([Turn("user", [Image(square), Text("and this sound?"), Audio((wave, 16000))])])
    expected = pipe.processor.encode(sample, add_generation_prompt=True)
    assert chat_ids(tokenizer, prepared) == expected.input_ids
    assert sorted(media) == ["audio", "image"] and "image" in messages[0]["content"][0]


def test_chat_template_renders_video_frames_as_the_processor(tokenizer, pipe):
    clip = SimpleNamespace(timestamps=[0.0, 0.5, 1.25])

    class ThreeFrames:  # the processor only asks an encoder for preprocess and num_tokens
        def preprocess(self, source):
            return clip

        def num_tokens(self, item):
            return 4 * len(item.timestamps)

    processor = OmniProcessor(tokenizer, pipe.layout, encoders={"video": ThreeFrames()})
    sample = Sample([Turn("user", [Video("clip.mp4"), Text("what happens?")])])
    video = {"type": "video", "timestamps": clip.timestamps, "tokens_per_frame": 4}
    messages = [{"role": "user", "content": [video, {"type": "text", "text": "what happens?"}]}]
    expected = processor.encode(sample, add_generation_prompt=True).input_ids
    assert chat_ids(tokenizer, messages) == expected


@pytest.mark.parametrize(
    "message,error",
    [
        ({"role": "robot", "content": "42"}, "unknown role robot"),
        ({"role": "user", "content": "hi", "thinking": "hm"}, "only assistant turns"),
        ({"role": "assistant", "content": [{"type": "image"}]}, "discrete answer"),
        ({"role": "user", "content": [{"type": "table"}]}, "unknown content type table"),
    ],
)
def test_chat_template_refuses_what_it_cannot_render(tokenizer, message, error):
    with pytest.raises(TemplateError, match=error):
        chat_ids(tokenizer, [message])


def test_generate_with_the_text_constraint_equals_the_pipeline_greedy_answer(
    model, tokenizer, pipe
):
    ids = chat_ids(tokenizer, CONVERSATION)
    free = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False)
    layout = pipe.layout
    assert any(t >= layout.text_size for t in free[0, len(ids) :].tolist())  # why it is needed
    tokens = answer(model, ids, "text", 8)
    allowed = layout.output_mask("text")
    assert all(bool(allowed[t]) for t in tokens) and len(tokens) == 8
    expected = pipe.generate(Sample(CONVERSATION_TURNS), max_new_tokens=8, speculative=False)
    assert tokens == expected.tokens


def test_generate_answers_an_image_input_as_the_pipeline(model, tokenizer, pipe, square):
    messages = [{"role": "user", "content": [{"type": "image", "image": square}]}]
    prepared, media = prepare_media(model, messages)
    tokens = answer(model, chat_ids(tokenizer, prepared), "text", 6, media=media)
    assert tokens == pipe.generate([square], max_new_tokens=6, speculative=False).tokens


def test_generate_writes_the_pipeline_image_block(model, tokenizer, pipe):
    messages = [{"role": "user", "content": "draw a red circle"}]
    tokens = answer(model, chat_ids(tokenizer, messages), "image", 90)
    result = pipe.generate(messages, "image", max_new_tokens=90, steps=1, speculative=False)
    layout = pipe.layout
    rows, cols = layout.image_grid
    assert tokens == result.tokens and result.image is not None
    assert len(tokens) == 2 + rows * (cols + 1) + 3  # one block, then the end of the turn
    assert tokens[0] == layout.special_id("<|dimg_start|>")
    assert tokens[-1] == layout.special_id("<|endofturn|>")


def test_generate_closes_an_audio_block_within_the_budget_as_the_pipeline(model, tokenizer, pipe):
    messages = [{"role": "user", "content": "say hello"}]
    tokens = answer(model, chat_ids(tokenizer, messages), "audio", 12)
    result = pipe.generate(messages, "audio", max_new_tokens=12, speculative=False)
    assert tokens == result.tokens and result.audio is not None
    assert tokens[-2:] == [pipe.layout.special_id(n) for n in ("<|daud_end|>", "<|endofturn|>")]


def test_batched_generate_equals_the_pipeline_batch(model, pipe):
    requests = ["hello", "a big red circle on the left"]
    batch = pipe.processor(
        [Sample([Turn("user", [Text(r)])]) for r in requests],
        padding_side="left",
        add_generation_prompt=True,
    )
    processors = logits_processor(model, "text", batch.input_ids.shape[1], 6)
    out = model.generate(
        batch.input_ids,
        attention_mask=batch.attention_mask,
        logits_processor=processors,
        max_new_tokens=6,
        do_sample=False,
    )
    expected = [r.tokens for r in pipe.generate_batch(requests, max_new_tokens=6)]
    assert out[:, batch.input_ids.shape[1] :].tolist() == expected


def test_logits_processor_refuses_a_budget_that_cannot_close_the_block(model):
    with pytest.raises(ValueError, match="too small to close a image answer"):
        logits_processor(model, "image", 10, max_new_tokens=40)


def test_an_older_folder_gets_the_chat_template_when_loaded(pipe, tmp_path):
    from tokenizers_mm.text import micro_text_tokenizer

    pipe.save_pretrained(tmp_path / "old")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (tmp_path / "old" / name).unlink(missing_ok=True)
    micro_text_tokenizer().save_pretrained(tmp_path / "old")  # as folders were saved before
    old_ids = {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2}
    (tmp_path / "old" / "generation_config.json").write_text(json.dumps(old_ids))
    assert AutoTokenizer.from_pretrained(tmp_path / "old").chat_template is None
    old_model = AutoModelForCausalLM.from_pretrained(tmp_path / "old")
    assert old_model.generation_config.eos_token_id == pipe.layout.special_id("<|endofturn|>")
    loaded = OmniPipeline.from_pretrained(tmp_path / "old")
    expected = loaded.processor.encode(CONVERSATION_TURNS, add_generation_prompt=True).input_ids
    assert chat_ids(loaded.tokenizer, CONVERSATION) == expected
    loaded.save_pretrained(tmp_path / "new")
    assert chat_ids(AutoTokenizer.from_pretrained(tmp_path / "new"), CONVERSATION) == expected


def test_attaching_leaves_the_callers_tokenizer_unchanged():
    micro, processor = build_micro("micro-llama", encoders={})
    plain = processor.tokenizer
    attached = OmniPipeline(micro, plain).tokenizer
    assert len(plain) == micro.layout.text_size and plain.chat_template is None
    assert len(attached) == micro.layout.image_offset and attached.chat_template == CHAT_TEMPLATE
