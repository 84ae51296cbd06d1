"""Speech unit tokenizer: a micro Whisper encoder + FSQ trained with CTC, and the unit probe."""

from __future__ import annotations

import math
import random
import unicodedata

import pytest
import torch

from omni.common.schedule import learning_rates, tokenizer_schedule
from tokenizers_mm.audio import (
    CharacterCTC,
    SpeechUnitTokenizer,
    character_error_rate,
    normalise_transcript,
    pack_clips,
    train_speech_tokenizer,
)
from tokenizers_mm.unit_probe import UnitCTCProbe, train_unit_probe

TINY = {
    "whisper": {
        "d_model": 32,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "max_source_positions": 50,  # 1 s windows
    },
    "levels": [3, 3, 3],
}


def tone(freq: float, seconds: float, rate: int = 16_000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.3 * torch.sin(2 * math.pi * freq * t)


@pytest.fixture()
def tokenizer() -> SpeechUnitTokenizer:
    torch.manual_seed(0)
    return SpeechUnitTokenizer(**TINY).eval()


def test_encode_gives_units_at_25_hz_in_range(tokenizer):
    units = tokenizer.encode(tone(440, 2.0), 16_000)
    assert units.shape == (50,) and units.dtype == torch.int64
    assert 0 <= units.min() and units.max() < tokenizer.codebook_size == 27
    assert tokenizer.codes_per_second == 25.0


def test_encode_resamples_and_downmixes(tokenizer):
    stereo = torch.stack([tone(440, 1.0, 44_100), tone(440, 1.0, 44_100)])
    assert tokenizer.encode(stereo, 44_100).shape == (25,)
    assert tokenizer.encode(tone(440, 3.0, 8_000), 8_000).shape == (75,)  # three 1 s windows


def test_encode_is_deterministic(tokenizer):
    clip = tone(300, 1.5) + 0.05 * torch.randn(24_000)
    assert torch.equal(tokenizer.encode(clip, 16_000), tokenizer.encode(clip, 16_000))


def test_training_loss_falls_on_fixed_clips():
    torch.manual_seed(0)
    model = SpeechUnitTokenizer(**TINY)
    clips = [tone(300, 0.8), tone(900, 0.8)]
    texts = ["ab", "ba"]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss, units = model.training_loss(clips, 16_000, texts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert units.shape == (40,)  # two 0.8 s clips at 25 Hz


def test_train_speech_tokenizer_resumes_exactly(tmp_path, kill_during_call):
    torch.manual_seed(0)
    clips = [(tone(300, 0.6).numpy(), 16_000, "hello"), (tone(600, 0.5), 16_000, "빨간 원")]
    options = {"steps": 4, "batch_size": 2, "checkpoint_every": 2, **TINY}
    whole = train_speech_tokenizer(tmp_path / "a", clips, **options)
    # A run killed during its third step resumes from the step-2 checkpoint to the same end.
    kill = (SpeechUnitTokenizer, "training_loss", 3, train_speech_tokenizer, tmp_path / "b", clips)
    kill_during_call(*kill, **options)
    resumed = train_speech_tokenizer(tmp_path / "b", clips, **options)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.codebook_size == 27 and (tmp_path / "b" / "model.safetensors").is_file()


def test_tokenizer_lr_warms_up_then_decays():
    rates = learning_rates(tokenizer_schedule(100), 100)
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.2) and rates[5] == 1.0
    assert all(a >= b for a, b in zip(rates[5:], rates[6:])) and rates[-1] < 0.03


def test_save_pretrained_round_trip(tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path)
    loaded = SpeechUnitTokenizer.from_pretrained(tmp_path)
    clip = tone(500, 1.2)
    assert torch.equal(loaded.encode(clip, 16_000), tokenizer.encode(clip, 16_000))
    assert loaded.transcribe(clip, 16_000) == tokenizer.transcribe(clip, 16_000)
    assert loaded.to_config() == tokenizer.to_config()


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(0),
        torch.full((16_000,), float("nan")),
        torch.full((16_000,), float("inf")),
        "hi",
    ],
    ids=["empty", "nan", "inf", "text"],
)
def test_bad_audio_raises_value_error(tokenizer, bad):
    with pytest.raises(ValueError):
        tokenizer.encode(bad, 16_000)


def test_bad_sample_rate_and_levels_raise_value_error(tokenizer):
    with pytest.raises(ValueError):
        tokenizer.encode(tone(440, 1.0), 0)
    with pytest.raises(ValueError):
        SpeechUnitTokenizer(levels=[1, 5])


def test_transcripts_normalise_to_lower_case_nfd_characters():
    assert normalise_transcript("What colour is it?  It's RED!") == "what colour is it it's red"
    korean = normalise_transcript("빨간 원")
    assert korean == unicodedata.normalize("NFD", "빨간 원") and len(korean) == 10


def test_greedy_ctc_decoding_merges_repeats_and_drops_blanks():
    ctc = CharacterCTC("ab ")
    path = torch.tensor([0, 1, 1, 0, 1, 2, 2, 0])
    assert ctc.greedy_decode(torch.nn.functional.one_hot(path, 4).float()) == "aab"
    assert ctc.labels("A b!").tolist() == [1, 3, 2]


def test_character_error_rate_counts_edits_per_reference_character():
    assert character_error_rate(["abcd", "ef"], ["abed", "ef"]) == pytest.approx(1 / 6)
    with pytest.raises(ValueError):
        character_error_rate(["a"], [])


def test_pack_clips_joins_clips_and_transcripts():
    clips = [(torch.ones(8_000), "one"), (torch.ones(4_000), "two")]
    waveform, text = pack_clips(clips, random.Random(0), seconds=2.0)
    words = text.split()
    assert set(words) <= {"one", "two"} and len(words) >= 2
    assert waveform.numel() <= 2.0 * 16_000 + 2_400


def test_unit_probe_learns_to_read_fixed_unit_sequences():
    torch.manual_seed(0)
    pairs = [(torch.tensor([1, 1, 2, 2, 3, 3]), "abc"), (torch.tensor([3, 3, 2, 2, 1, 1]), "cba")]
    probe = train_unit_probe(pairs, 4, steps=120, batch_size=4, lr=2e-2, dim=32, layers=1)
    assert probe.transcribe([units for units, _ in pairs]) == ["abc", "cba"]
    assert isinstance(probe, UnitCTCProbe)


def test_unit_probe_grid_coordinates_and_substitution_only_in_training():
    torch.manual_seed(0)
    probe = UnitCTCProbe(12, dim=16, layers=1, dropout=0.5, substitute=0.5, levels=[3, 4])
    assert probe.grid.shape == (12, 2) and probe.grid.abs().max() == 1
    assert len({tuple(row) for row in probe.grid.tolist()}) == 12  # one grid point per id
    assert probe.grid[1].tolist() == [0.0, -1.0]  # the first level varies fastest, as in FSQ
    units = [torch.tensor([0, 5, 11, 3])]
    probe.eval()
    first, second = probe(units)[0], probe(units)[0]
    assert torch.equal(first, second)  # no substitution or dropout at evaluation
    assert probe.training is False and probe.transcribe(units) == probe.transcribe(units)
    with pytest.raises(ValueError):
        UnitCTCProbe(10, levels=[3, 4])


def test_cli_init_starts_from_a_saved_tokenizer(tmp_path, capsys):
    from omni.cli import main
    from training.toyworld.tasks import generate

    generate(tmp_path / "world", 4, seed=0, tasks=["asr"], progress=False)
    torch.manual_seed(0)
    SpeechUnitTokenizer(**TINY).save_pretrained(tmp_path / "saved")
    argv = ["train", "tokenizer", "--kind", "speech", "--data", str(tmp_path / "world")]
    # One step of a warm-up schedule has learning rate 0: the result is the saved tokenizer.
    main([*argv, "--out", str(tmp_path / "new"), "--init", str(tmp_path / "saved"), "--steps", "1"])
    saved = SpeechUnitTokenizer.from_pretrained(tmp_path / "saved").state_dict()
    new = SpeechUnitTokenizer.from_pretrained(tmp_path / "new").state_dict()
    assert saved.keys() == new.keys() and all(torch.equal(saved[k], new[k]) for k in saved)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "x"), "--init", str(tmp_path / "none")]) == 2
    assert "no saved tokenizer there" in capsys.readouterr().err
    bpe = ["train", "tokenizer", "--kind", "bpe", "--data", str(tmp_path), "--out", "x"]
    assert main([*bpe, "--init", str(tmp_path / "saved")]) == 2
    assert "--init starts an image or speech tokenizer, not 'bpe'" in capsys.readouterr().err
