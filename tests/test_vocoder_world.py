"""The vocoder on the wider world: clips spoken in many drawn voices with effects, a clean
target beside each, a speaker encoder that learns every voice while the table keeps the named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_speech_tokenizer import TINY
from test_vocoder import tiny_config

from decoders import load_decoder
from decoders.audio import UnitVocoder
from decoders.audio_train import SpeechClip, VocoderTrainConfig, _vocoder_batch, train_vocoder
from omni.cli import main
from tokenizers_mm.audio import SpeechUnitTokenizer
from training.toyworld.speech import GENERATION_VOICES, SpeechRenderer
from training.toyworld.spoken import spoken_clips


@pytest.fixture(scope="module")
def renderer() -> SpeechRenderer:
    return SpeechRenderer()


def test_varied_clips_carry_their_clean_rendering_sample_aligned(renderer) -> None:
    clips = spoken_clips("train", 4, 2, 3, renderer, "varied")
    assert len(clips) == 8 and len({c["voice"] for c in clips}) == 4
    assert [c["lang"] for c in clips[::2]] == ["en", "ko", "en", "ko"]
    for clip in clips:
        wave, clean = clip["wave"].numpy(), clip["clean"].numpy()
        assert wave.shape == clean.shape and not np.array_equal(wave, clean)
        # the effects keep the timing: the clean clip matches best where it lies, not shifted
        lags = {lag: float(np.dot(wave[200:-200], np.roll(clean, lag)[200:-200]))
                for lag in (-80, -40, 0, 40, 80)}  # fmt: skip
        assert max(lags, key=lags.get) == 0, lags
    classic = spoken_clips("train", 3, 1, 3, renderer, "classic")
    assert all(torch.equal(c["wave"], c["clean"]) for c in classic)


def _clips(targets: bool) -> list[SpeechClip]:
    rng = torch.Generator().manual_seed(0)
    clips = []
    for speaker, pitch in (("low", 0.05), ("mid", 0.2), ("high", 0.4)):
        for _ in range(3):
            clean = torch.sin(torch.arange(20 * 160) * pitch) * 0.3
            noisy = clean + 0.1 * torch.randn(20 * 160, generator=rng)
            units = torch.randint(0, 32, (20,), generator=rng)
            clips.append(SpeechClip(noisy, units, speaker, clean if targets else None))
    return clips


def test_the_generator_learns_the_target_and_the_table_keeps_the_named_voices(tmp_path) -> None:
    import random

    clips = _clips(targets=True)
    config = VocoderTrainConfig(
        output=str(tmp_path), steps=3, speaker_steps=1, gan_start=10, batch_size=2,
        segment_units=8, speaker_crop_seconds=0.5, checkpoint_every=3, named=["mid", "low"],
    )  # fmt: skip
    embeddings = torch.zeros(len(clips), 8)
    by_speaker = {s: [i for i, c in enumerate(clips) if c.speaker == s] for s in ("low", "mid")}
    by_speaker["high"] = [i for i, c in enumerate(clips) if c.speaker == "high"]
    _, waves, _ = _vocoder_batch(clips, embeddings, by_speaker, config, 160, random.Random(0))
    # each segment the generator learns to say is a slice of a clean target, not of the noisy
    slices = [c.target[s * 160 : (s + 8) * 160] for c in clips for s in range(13)]
    assert all(any(torch.equal(w, piece) for piece in slices) for w in waves)
    model = train_vocoder(UnitVocoder(tiny_config(num_speakers=3)), clips, config)
    assert model.config.speakers == ["low", "mid"] and model.speaker_table.shape == (2, 8)
    assert model.speaker_encoder.classifier.out_features == 3
    assert load_decoder(tmp_path / "vocoder").config.speakers == ["low", "mid"]


def test_bad_targets_and_named_voices_are_clear_errors(tmp_path) -> None:
    clips = _clips(targets=True)
    config = VocoderTrainConfig(output=str(tmp_path), steps=1, named=["nobody"])
    with pytest.raises(ValueError, match=r"named voices \['nobody'\] have no training clips"):
        train_vocoder(UnitVocoder(tiny_config(num_speakers=3)), clips, config)
    clips[0].target = clips[0].target[:-5]
    with pytest.raises(ValueError, match="a clip's target has 3195 samples, its wave 3200"):
        train_vocoder(UnitVocoder(tiny_config(num_speakers=3)), clips, VocoderTrainConfig())


def test_cli_trains_on_world_voices_and_rejects_bad_world_options(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    SpeechUnitTokenizer(**TINY).save_pretrained(tmp_path / "tok")
    args = ["train", "vocoder", "--tokenizer", str(tmp_path / "tok"), "--threads", "1"]
    world = ["--world", "varied", "--voices", "3", "--clips-per-voice", "2", "--named-clips", "4"]
    steps = ["--steps", "2", "--speaker-steps", "1", "--out", str(tmp_path / "v")]
    assert main([*args, *world, *steps]) == 0
    vocoder = load_decoder(tmp_path / "v" / "vocoder")
    # the named table holds only the classic voices; the speaker encoder learned all seven
    assert 1 <= len(vocoder.config.speakers) <= 4
    classic = {voice.id for voices in GENERATION_VOICES.values() for voice in voices}
    assert set(vocoder.config.speakers) <= classic
    assert vocoder.speaker_encoder.classifier.out_features == 3 + len(vocoder.config.speakers)
    assert main([*args, "--world", "classic", *steps]) == 2
    assert "style 'classic' speaks only the classic voices" in capsys.readouterr().err
    assert main([*args, "--world", "varied", "--voices", "1", *steps]) == 2
    assert "--voices and --clips-per-voice of at least 2" in capsys.readouterr().err
    assert main([*args, "--world", "nowhere", *steps]) == 2
    assert "unknown world style 'nowhere'" in capsys.readouterr().err
