"""Constrained decoding: an image answer is one well-formed block, audio answers only units."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from omni.blocks import BlockCodec
from omni.constraints import ConstrainedLogits, OutputConstraint
from omni.vocab import VocabLayout

LAYOUT = VocabLayout(text_size=300, image_codes=64, audio_codes=27, image_grid=(3, 4))


def decode(constraint: OutputConstraint, seed: int, steps: int) -> list[int]:
    """Greedy decoding of random logits under the constraint."""
    generator = torch.Generator().manual_seed(seed)
    processor = ConstrainedLogits(constraint, prompt_length=1)
    ids = torch.tensor([[LAYOUT.role_id("assistant")]])
    for _ in range(steps):
        scores = torch.randn(1, LAYOUT.total_size, generator=generator) * 5
        scores = processor(ids, scores)
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
    return ids[0, 1:].tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.integers(0, 10))
def test_image_answers_are_whole_rows_inside_markers(seed, extra):
    constraint = OutputConstraint(LAYOUT, "image")
    answer = decode(constraint, seed, constraint.min_tokens() + extra)
    rows, cols = LAYOUT.image_grid
    assert answer[0] == LAYOUT.special_id("<|dimg_start|>")
    assert LAYOUT.special_name(answer[1]).startswith("<|ratio_")
    body = answer[2 : 2 + rows * (cols + 1)]
    for r in range(rows):
        row = body[r * (cols + 1) : (r + 1) * (cols + 1)]
        assert all(LAYOUT.lookup(i)[0] == "image" for i in row[:-1])
        assert row[-1] == LAYOUT.special_id("<|dimg_eol|>")
    tail = answer[2 + rows * (cols + 1) :]
    assert tail[:3] == [
        LAYOUT.special_id(n) for n in ("<|dimg_eoi|>", "<|dimg_end|>", "<|endofturn|>")
    ]
    assert all(i == LAYOUT.special_id("<|pad|>") for i in tail[3:])
    image_ids = [i for i in answer if LAYOUT.lookup(i)[0] == "image"]
    assert len(image_ids) == rows * cols


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(3, 40))
def test_audio_answers_hold_only_audio_units(seed, steps):
    answer = decode(OutputConstraint(LAYOUT, "audio"), seed, steps)
    assert answer[0] == LAYOUT.special_id("<|daud_start|>")
    end = LAYOUT.special_id("<|daud_end|>")
    body = answer[1 : answer.index(end)] if end in answer else answer[1:]
    assert body and all(LAYOUT.lookup(i)[0] == "audio" for i in body)
    if end in answer:
        after = answer[answer.index(end) + 1 :]
        assert after[:1] == [LAYOUT.special_id("<|endofturn|>")][: len(after)]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_text_answers_hold_only_text_then_end_the_turn(seed):
    answer = decode(OutputConstraint(LAYOUT, "text"), seed, 20)
    end, pad = LAYOUT.special_id("<|endofturn|>"), LAYOUT.special_id("<|pad|>")
    said = answer[: answer.index(end)] if end in answer else answer
    reasoning_marks = {LAYOUT.special_id("<think>"), LAYOUT.special_id("</think>")}
    assert all(i < LAYOUT.text_size or i in reasoning_marks for i in said)
    assert all(i == pad for i in answer[len(said) + 1 :])


def decode_within(constraint: OutputConstraint, seed: int, budget: int) -> list[int]:
    """Greedy decoding of random logits under the constraint, with a token budget."""
    generator = torch.Generator().manual_seed(seed)
    answer: list[int] = []
    while len(answer) < budget and LAYOUT.special_id("<|endofturn|>") not in answer:
        scores = torch.randn(LAYOUT.total_size, generator=generator) * 5
        allowed = constraint.allowed(answer, budget - len(answer))
        answer.append(int(scores.masked_fill(~allowed, float("-inf")).argmax()))
    return answer


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    modality=st.sampled_from(["image", "audio"]),
    extra=st.integers(0, 30),
)
def test_a_think_block_closes_before_the_media_block_opens(seed, modality, extra):
    constraint = OutputConstraint(LAYOUT, modality, think=True)
    answer = decode_within(constraint, seed, constraint.min_tokens() + extra)
    close = answer.index(LAYOUT.special_id("</think>"))
    assert all(i < LAYOUT.text_size for i in answer[:close])  # reasoning is text only
    opening = "<|dimg_start|>" if modality == "image" else "<|daud_start|>"
    assert answer[close + 1] == LAYOUT.special_id(opening)
    assert answer[-1] == LAYOUT.special_id("<|endofturn|>")
    (block,) = BlockCodec(LAYOUT).blocks(answer)
    assert type(block).__name__ == ("ImageBlock" if modality == "image" else "AudioBlock")


def test_min_tokens_of_a_thinking_image_answer_counts_the_closing_marker():
    plain, thinking = (
        OutputConstraint(LAYOUT, "image"),
        OutputConstraint(LAYOUT, "image", think=True),
    )
    assert thinking.min_tokens() == plain.min_tokens() + 1


def test_min_tokens_of_an_image_block():
    assert OutputConstraint(LAYOUT, "image").min_tokens() == 2 + 3 * 5 + 3


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 60))
def test_auto_answers_keep_every_block_well_formed(seed, steps):
    answer = decode(OutputConstraint(LAYOUT, "auto"), seed, steps)
    start, eol = LAYOUT.special_id("<|dimg_start|>"), LAYOUT.special_id("<|dimg_eol|>")
    rows, cols = LAYOUT.image_grid
    for index, token in enumerate(answer):
        if token == start:
            block = answer[index + 2 : index + 2 + rows * (cols + 1)]
            ends = [i for i, t in enumerate(block) if t == eol]
            assert ends == [r * (cols + 1) + cols for r in range(len(ends))]
    codes_outside = [
        t
        for i, t in enumerate(answer)
        if LAYOUT.lookup(t)[0] == "image" and start not in answer[:i]
    ]
    assert not codes_outside
