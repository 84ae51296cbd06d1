"""Sequence building: chat template, labels, padding sides, packing, bad input."""

import pytest
import torch

from omni import Audio, Image, OmniProcessor, Sample, Text, Turn, Video, VocabLayout
from omni.processor import IGNORE_INDEX, packing_ratio


class CountingEncoder:
    """A stand-in with the encoder contract's two processor-facing methods."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    def preprocess(self, source):
        return torch.zeros(3)

    def num_tokens(self, item) -> int:
        return self.tokens


@pytest.fixture
def processor(text_tokenizer) -> OmniProcessor:
    layout = VocabLayout(
        text_size=len(text_tokenizer), image_codes=256, audio_codes=243, image_grid=(4, 4)
    )
    encoders = {"image": CountingEncoder(4), "audio": CountingEncoder(6)}
    return OmniProcessor(text_tokenizer, layout, encoders=encoders, max_length=256)


def chat(answer: str = "a red circle") -> Sample:
    return Sample(
        [
            Turn("system", [Text("be brief")]),
            Turn("user", [Image("x.png"), Text("what is this?")]),
            Turn("assistant", [Text(answer)]),
        ]
    )


def test_chat_template_frames_each_turn(processor):
    ids = processor.encode(chat()).input_ids
    layout = processor.layout
    assert ids[0] == layout.role_id("system")
    roles = [i for i in ids if i in {layout.role_id(r) for r in ("system", "user", "assistant")}]
    assert roles == [layout.role_id(r) for r in ("system", "user", "assistant")]
    assert ids.count(layout.special_id("<|endofturn|>")) == 3
    assert ids.count(layout.special_id("<|image_pad|>")) == 4


def test_labels_only_on_assistant_turns(processor, text_tokenizer):
    encoded = processor.encode(chat("a red circle"))
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    answer = text_tokenizer.encode("a red circle", add_special_tokens=False)
    assert trained == [*answer, processor.layout.special_id("<|endofturn|>")]


def test_loss_on_all_trains_every_token_but_placeholders(processor):
    encoded = processor.encode(chat(), loss_on="all")
    pad = processor.layout.special_id("<|image_pad|>")
    for token, label in zip(encoded.input_ids, encoded.labels):
        assert (
            (label == IGNORE_INDEX) == (token == pad)
            or token in {processor.layout.role_id(r) for r in ("system", "user", "assistant")}
            or token
            in (
                processor.layout.special_id("<|image_start|>"),
                processor.layout.special_id("<|image_end|>"),
            )
        )


def test_think_block_precedes_the_answer(processor):
    sample = Sample(
        [Turn("user", [Text("2+2?")]), Turn("assistant", [Text("4")], think="two plus two")]
    )
    ids = processor.encode(sample).input_ids
    think, end_think = (
        processor.layout.special_id("<think>"),
        processor.layout.special_id("</think>"),
    )
    assert ids.index(think) < ids.index(end_think) < len(ids) - 1


def test_discrete_image_is_rows_with_row_ends(processor):
    codes = torch.arange(16).reshape(4, 4)
    sample = Sample(
        [Turn("user", [Text("draw")]), Turn("assistant", [Image(codes=codes, ratio="4:3")])]
    )
    ids = processor.encode(sample).input_ids
    layout = processor.layout
    start = ids.index(layout.special_id("<|dimg_start|>"))
    block = ids[start : start + 2 + 4 * 5 + 2]
    assert block[1] == layout.ratio_id("4:3")
    rows = [block[2 + r * 5 : 2 + r * 5 + 5] for r in range(4)]
    for r, row in enumerate(rows):
        assert row[-1] == layout.special_id("<|dimg_eol|>")
        assert layout.ids_to_codes("image", torch.tensor(row[:-1])).tolist() == codes[r].tolist()
    assert block[-2:] == [layout.special_id("<|dimg_eoi|>"), layout.special_id("<|dimg_end|>")]


def test_audio_both_mode_gives_slots_and_units(processor):
    units = torch.tensor([1, 2, 3])
    sample = Sample([Turn("user", [Audio("a.wav", codes=units, mode="both")])])
    encoded = processor.encode(sample)
    layout = processor.layout
    assert encoded.input_ids.count(layout.special_id("<|audio_pad|>")) == 6
    start = encoded.input_ids.index(layout.special_id("<|daud_start|>"))
    assert encoded.input_ids[start + 1 : start + 4] == layout.codes_to_ids("audio", units).tolist()
    assert len(encoded.media["audio"]) == 1


def test_right_and_left_padding(processor):
    short, long = chat("yes"), chat("a big red circle on the left of the image")
    right = processor([short, long], padding_side="right")
    left = processor([short, long], padding_side="left", add_generation_prompt=True)
    pad = processor.layout.special_id("<|pad|>")
    assert right.input_ids[0, -1] == pad and right.attention_mask[0, -1] == 0
    assert left.input_ids[0, 0] == pad and left.attention_mask[0, 0] == 0
    assert left.input_ids[0, -1] == processor.layout.role_id("assistant")
    # positions count real tokens only, so both rows end on their own length - 1
    lengths = left.attention_mask.sum(-1)
    assert left.position_ids[:, -1].tolist() == (lengths - 1).tolist()


def test_packing_resets_positions_and_hides_boundaries(processor):
    encoded = [processor.encode(chat("x" * n)) for n in (1, 5, 9, 3)]
    batch = processor.pack(encoded, row_length=96)
    assert batch.attention_mask is None
    total = sum(len(e) for e in encoded)
    assert int((batch.input_ids != processor.layout.special_id("<|pad|>")).sum()) == total
    starts = (batch.position_ids == 0).nonzero().tolist()
    for row, col in starts:
        assert batch.labels[row, col] == IGNORE_INDEX
    assert packing_ratio(batch, processor.layout.special_id("<|pad|>")) > 0.5
    assert len(batch.media["image"]) == 4


def test_unknown_segment_type_is_a_value_error(processor):
    with pytest.raises(ValueError, match="unknown segment type"):
        Sample.from_dict({"turns": [{"role": "user", "segments": [{"type": "smell"}]}]})
    with pytest.raises(ValueError, match="unknown segment type"):
        Turn("user", ["plain string"])
    with pytest.raises(ValueError, match="unknown role"):
        Turn("robot", [Text("hi")])


def test_missing_encoder_and_tokenizer_are_named(processor):
    with pytest.raises(ValueError, match="no video encoder"):
        processor.encode(Sample([Turn("user", [Video("clip.mp4")])]))
    with pytest.raises(ValueError, match="no image tokenizer"):
        processor.encode(Sample([Turn("assistant", [Image("x.png")])]))


def test_over_long_sample_is_a_value_error(processor):
    with pytest.raises(ValueError, match="over the model's maximum length of 256"):
        processor.encode(chat("word " * 400))


def test_manifest_form_round_trips(tmp_path):
    data = {
        "id": "s1",
        "task": "caption",
        "turns": [
            {
                "role": "user",
                "segments": [
                    {"type": "image", "path": "media/a.png"},
                    {"type": "text", "text": "?"},
                ],
            },
            {
                "role": "assistant",
                "segments": [
                    {"type": "audio", "path": "media/a.wav", "text": "hi", "voice": "en-f1"}
                ],
                "think": "hmm",
            },
        ],
        "meta": {"lang": "en"},
    }
    sample = Sample.from_dict(data, root=tmp_path)
    assert sample.turns[0].segments[0].source == str(tmp_path / "media/a.png")
    assert sample.turns[1].segments[0].voice == "en-f1" and sample.turns[1].think == "hmm"
    again = Sample.from_dict(sample.to_dict())
    assert again.to_dict() == sample.to_dict()
