"""The unified vocabulary layout: blocks, lookups, masks, serialisation."""

import pytest
import torch

from omni.vocab import SPECIAL_TOKENS, VocabLayout


@pytest.fixture
def layout() -> VocabLayout:
    return VocabLayout(text_size=500, image_codes=256, audio_codes=243)


def test_blocks_are_contiguous_and_padded(layout):
    assert layout.range_of("text") == range(0, 500)
    assert layout.range_of("special") == range(500, 500 + len(SPECIAL_TOKENS))
    assert layout.range_of("image").start == layout.range_of("special").stop
    assert layout.range_of("audio") == range(layout.audio_offset, layout.audio_offset + 243)
    assert layout.total_size % 64 == 0 and layout.total_size >= layout.used_size


@pytest.mark.parametrize(
    "modality,code", [("text", 7), ("image", 255), ("audio", 0), ("special", 3)]
)
def test_lookup_inverts_token_id(layout, modality, code):
    assert layout.lookup(layout.token_id(modality, code)) == (modality, code)


def test_every_id_maps_back(layout):
    for token_id in range(layout.used_size):
        modality, code = layout.lookup(token_id)
        assert layout.token_id(modality, code) == token_id


def test_code_tensors_round_trip(layout):
    codes = torch.arange(256).reshape(16, 16)
    ids = layout.codes_to_ids("image", codes)
    assert torch.equal(layout.ids_to_codes("image", ids), codes)
    with pytest.raises(ValueError, match="outside the audio block"):
        layout.ids_to_codes("audio", ids)


def test_out_of_range_codes_are_rejected(layout):
    with pytest.raises(ValueError, match="image codes must lie in 0..255"):
        layout.codes_to_ids("image", torch.tensor([256]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        layout.lookup(layout.used_size)
    with pytest.raises(ValueError, match="unknown modality"):
        layout.range_of("smell")


def test_output_masks_cover_only_their_blocks(layout):
    image = layout.output_mask("image")
    audio = layout.output_mask("audio")
    text = layout.output_mask("text")
    assert image[layout.range_of("image").start : layout.range_of("image").stop].all()
    assert not image[: layout.text_size].any() and not image[layout.audio_offset :].any()
    assert audio[layout.audio_offset : layout.used_size].all()
    assert not audio[: layout.audio_offset].any() or audio[layout.special_id("<|daud_start|>")]
    assert not audio[layout.image_offset : layout.audio_offset].any()
    assert text[: layout.text_size].all() and not text[layout.image_offset :].any()
    with pytest.raises(ValueError, match="unknown output modality"):
        layout.output_mask("video")


def test_layout_serialises_as_plain_data(layout):
    data = layout.to_dict()
    assert isinstance(data["specials"], list)
    assert VocabLayout.from_dict(data) == layout


def test_required_special_tokens_exist(layout):
    for name in (
        "<|user|>",
        "<|assistant|>",
        "<|system|>",
        "<|endofturn|>",
        "<think>",
        "</think>",
        "<|dimg_start|>",
        "<|dimg_eol|>",
        "<|dimg_eoi|>",
        "<|dimg_end|>",
        "<|ratio_1:1|>",
        "<|daud_start|>",
        "<|daud_end|>",
        "<|image_pad|>",
        "<|audio_pad|>",
        "<|video_pad|>",
    ):
        assert layout.lookup(layout.special_id(name))[0] == "special"


@pytest.fixture
def in_place() -> VocabLayout:
    """Image codes at ids 100..163 and audio codes at 200..226 of a 300-token text tokenizer."""
    return VocabLayout(
        text_size=300, image_codes=64, audio_codes=27, image_start=100, audio_start=200
    )


def test_in_place_blocks_lie_inside_the_text_block_and_append_only_specials(in_place):
    assert in_place.range_of("image") == range(100, 164)
    assert in_place.range_of("audio") == range(200, 227)
    assert in_place.range_of("special") == range(300, 300 + len(SPECIAL_TOKENS))
    assert in_place.used_size == 300 + len(SPECIAL_TOKENS)
    assert in_place.in_place == ("image", "audio")


def test_in_place_code_ids_look_up_as_codes_not_text(in_place):
    assert in_place.lookup(130) == ("image", 30)
    assert in_place.lookup(226) == ("audio", 26)
    assert in_place.lookup(99) == ("text", 99)
    assert in_place.token_id("image", 0) == 100
    assert torch.equal(
        in_place.codes_to_ids("audio", torch.tensor([0, 26])), torch.tensor([200, 226])
    )


def test_text_answers_leave_the_in_place_code_ids_out(in_place):
    text = in_place.output_mask("text")
    assert text[:100].all() and not text[100:164].any() and not text[200:227].any()
    image = in_place.output_mask("image")
    assert image[100:164].all() and not image[:100].any()
    both = in_place.mask("image", "text")
    assert both[100:164].all() and both[:100].all()


def test_a_mixed_layout_appends_only_the_block_not_in_place():
    layout = VocabLayout(text_size=300, image_codes=64, audio_codes=27, image_start=0)
    assert layout.range_of("image") == range(0, 64)
    assert layout.range_of("audio") == range(300 + len(SPECIAL_TOKENS), 327 + len(SPECIAL_TOKENS))


@pytest.mark.parametrize(
    "starts,message",
    [
        ({"image_start": 250}, "must lie inside the text block"),
        ({"audio_start": -1}, "must lie inside the text block"),
        ({"image_start": 0, "audio_start": 50}, "overlap"),
    ],
)
def test_in_place_blocks_outside_the_text_block_or_overlapping_are_refused(starts, message):
    with pytest.raises(ValueError, match=message):
        VocabLayout(text_size=300, image_codes=64, audio_codes=27, **starts)


def test_in_place_layout_serialises_as_plain_data(in_place):
    assert VocabLayout.from_dict(in_place.to_dict()) == in_place
    assert (
        VocabLayout.from_dict({"text_size": 5, "image_codes": 2, "audio_codes": 2}).in_place == ()
    )
