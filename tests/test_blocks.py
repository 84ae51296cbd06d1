"""The block codec: one grammar that writes, reads and constrains image and audio blocks."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.vision import RATIOS, image_shape
from omni.blocks import AudioBlock, BlockCodec, ImageBlock
from omni.constraints import OutputConstraint
from omni.vocab import SPECIAL_TOKENS, VocabLayout

LAYOUT = VocabLayout(text_size=300, image_codes=64, audio_codes=27, image_grid=(3, 4))
CODEC = BlockCodec(LAYOUT)
# The special tokens of the first vocabulary (c2d01d8): saved checkpoints carry this list.
FIRST_SPECIALS = SPECIAL_TOKENS[: SPECIAL_TOKENS.index("<|video_end|>") + 1]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), ratio=st.sampled_from(LAYOUT.aspect_ratios))
def test_image_blocks_round_trip(seed, ratio):
    codes = torch.randint(0, 64, (3, 4), generator=torch.Generator().manual_seed(seed))
    ids = CODEC.encode_image(codes, ratio)
    assert len(ids) == CODEC.image_block_length
    (block,) = CODEC.blocks([5, *ids, 7])
    assert isinstance(block, ImageBlock) and block.ratio == ratio
    assert torch.equal(block.codes, codes)


@settings(max_examples=40, deadline=None)
@given(units=st.lists(st.integers(0, 26), min_size=1, max_size=30))
def test_audio_blocks_round_trip(units):
    ids = CODEC.encode_audio(units)
    (block,) = CODEC.blocks([*ids, LAYOUT.special_id("<|endofturn|>")])
    assert isinstance(block, AudioBlock) and block.units.tolist() == units


def test_blocks_in_an_answer_come_in_order_and_an_open_one_is_left_out():
    grid = torch.arange(12).reshape(3, 4)
    image, audio = CODEC.encode_image(grid, "16:9"), CODEC.encode_audio([1, 2, 3])
    answer = [*image, 10, 11, *audio, *CODEC.encode_audio([4])[:-1]]
    kinds = [type(block).__name__ for block in CODEC.blocks(answer)]
    assert kinds == ["ImageBlock", "AudioBlock"]
    assert CODEC.open_block(answer) == ("audio", [LAYOUT.token_id("audio", 4)])
    assert CODEC.open_block(answer[: len(image) - 1])[0] == "image"


def test_a_malformed_image_block_is_refused():
    ids = CODEC.encode_image(torch.zeros(3, 4, dtype=torch.long))
    eol = LAYOUT.special_id("<|dimg_eol|>")
    swapped = list(ids)
    swapped[2], swapped[6] = eol, swapped[2]  # an eol inside the first row
    with pytest.raises(ValueError, match="malformed image block"):
        list(CODEC.blocks(swapped))
    with pytest.raises(ValueError, match="malformed image block"):
        list(CODEC.blocks([*ids[:5], *ids[-2:]]))


def test_the_processor_writes_blocks_with_the_codec():
    from omni.processor import OmniProcessor
    from tokenizers_mm.text import micro_text_tokenizer

    tokenizer = micro_text_tokenizer()
    layout = VocabLayout(len(tokenizer), image_codes=64, audio_codes=27, image_grid=(3, 4))
    processor = OmniProcessor(tokenizer, layout)
    grid = torch.arange(12).reshape(3, 4)
    assert processor.discrete_ids("image", grid, "3:2") == BlockCodec(layout).encode_image(
        grid, "3:2"
    )
    assert processor.discrete_ids("audio", torch.tensor([3, 1])) == BlockCodec(layout).encode_audio(
        [3, 1]
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_what_the_constraint_allows_the_codec_parses(seed):
    constraint = OutputConstraint(LAYOUT, "image")
    generator = torch.Generator().manual_seed(seed)
    answer: list[int] = []
    for _ in range(constraint.min_tokens()):
        scores = torch.randn(LAYOUT.total_size, generator=generator)
        allowed = constraint.allowed(answer, constraint.min_tokens() - len(answer))
        answer.append(int(scores.masked_fill(~allowed, float("-inf")).argmax()))
    (block,) = CODEC.blocks(answer)
    assert block.codes.shape == (3, 4) and block.ratio in LAYOUT.aspect_ratios


def test_one_ratio_list_for_the_vocabulary_and_the_image_decoder():
    assert tuple(RATIOS) == LAYOUT.aspect_ratios
    for ratio in RATIOS:
        height, width = image_shape(ratio, 64)
        w, h = RATIOS[ratio]
        assert abs(width / height - w / h) < 0.35  # sides are rounded to multiples of 16


def test_new_ratios_keep_the_ids_of_saved_checkpoints():
    assert SPECIAL_TOKENS[: len(FIRST_SPECIALS)] == FIRST_SPECIALS
    assert FIRST_SPECIALS.index("<|ratio_1:1|>") == 12 and "<|ratio_3:2|>" not in FIRST_SPECIALS
    old = VocabLayout(300, 64, 27, image_grid=(3, 4), specials=FIRST_SPECIALS)
    assert old.aspect_ratios == ("1:1", "4:3", "3:4", "16:9", "9:16")
    assert old.ratio_id("4:3") == LAYOUT.ratio_id("4:3")
    with pytest.raises(ValueError, match="unknown aspect ratio '3:2'"):
        old.ratio_id("3:2")
    (block,) = BlockCodec(old).blocks(BlockCodec(old).encode_image(torch.ones(3, 4), "9:16"))
    assert block.ratio == "9:16"
