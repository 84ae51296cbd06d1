"""Unit-BigVGAN vocoder, speaker encoder, streaming, EnCodec wrapper: micro configs on CPU."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
import torch

from decoders import load_decoder
from decoders.audio import SpeakerEncoderConfig, UnitVocoder, VocoderConfig
from decoders.audio_losses import (
    VocoderDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from decoders.audio_train import (
    SpeechClip,
    VocoderTrainConfig,
    remap_unit_embeddings,
    train_vocoder,
    warm_start,
)
from omni.common.checkpoint import load_training_state, save_training_state
from omni.common.mel import MultiResolutionMelLoss
from training.decoder_metrics import (
    mcd,
    mel_frames,
    unit_griffin_lim,
    unit_mel_table,
    wilson_interval,
)

RATE = 4000  # 160 samples per unit at 25 Hz: a micro rate that keeps every test fast


def tiny_config(num_units: int = 32, num_speakers: int = 2) -> VocoderConfig:
    return VocoderConfig(
        num_units=num_units,
        sample_rate=RATE,
        unit_dim=8,
        hidden_channels=16,
        upsample_factors=[8, 5, 4],
        upsample_kernel_sizes=[16, 15, 8],
        speaker_encoder=SpeakerEncoderConfig(
            sample_rate=RATE,
            n_mels=16,
            embedding_dim=8,
            channels=[16, 16, 16, 32],
            attention_channels=8,
            se_channels=4,
            num_speakers=num_speakers,
        ),
    )


@pytest.fixture(scope="module")
def vocoder() -> UnitVocoder:
    torch.manual_seed(0)
    model = UnitVocoder(tiny_config()).eval()
    model.set_speaker_table(["alice", "bob"], torch.randn(2, 8))
    return model


def test_forward_upsamples_units_to_the_waveform_rate(vocoder: UnitVocoder) -> None:
    units = torch.randint(0, 32, (2, 7))
    wave = vocoder(units, torch.randn(2, 8))
    assert wave.shape == (2, 7 * 160)
    assert wave.abs().max() <= 1.0


def test_decode_returns_rate_and_float_waveform(vocoder: UnitVocoder) -> None:
    rate, wave = vocoder.decode([1, 2, 3, 4], speaker="bob")
    assert rate == RATE
    assert wave.dtype == np.float32 and wave.shape == (4 * 160,)


def test_speaker_changes_the_waveform(vocoder: UnitVocoder) -> None:
    units = list(range(10))
    _, alice = vocoder.decode(units, speaker="alice")
    _, bob = vocoder.decode(units, speaker="bob")
    assert np.abs(alice - bob).max() > 1e-4


def test_zero_shot_reference_clip_gives_unit_norm_embedding(vocoder: UnitVocoder) -> None:
    clip = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    embedding = vocoder.speaker_vector((RATE, clip))
    assert embedding.shape == (8,)
    assert torch.linalg.norm(embedding).item() == pytest.approx(1.0, abs=1e-5)
    rate, wave = vocoder.decode([3, 4, 5], speaker=(RATE, clip))
    assert wave.shape == (3 * 160,)


def test_a_reference_clip_in_int16_or_stereo_embeds_like_its_mono_floats(
    vocoder: UnitVocoder,
) -> None:
    clip = np.random.default_rng(1).normal(0, 0.1, RATE).clip(-1, 1).astype(np.float32)
    pcm = np.round(clip * 32767).astype(np.int16)
    expected = vocoder.embed_speaker(pcm.astype(np.float32) / 32768, RATE)
    assert torch.allclose(vocoder.embed_speaker(pcm, RATE), expected, atol=1e-5)
    stereo = np.stack([clip, clip])  # [channels, samples]: the mean, not the interleave
    assert torch.allclose(
        vocoder.embed_speaker(stereo, RATE), vocoder.embed_speaker(clip, RATE), atol=1e-6
    )


# The shipped vocoder and four clips of the toy world's examples, each in a known voice.
SHIPPED_VOCODER = Path(__file__).parents[1] / "assets" / "decoders" / "vocoder"
EXAMPLE_MEDIA = Path(__file__).parents[1] / "assets" / "toyworld-examples" / "media"
VOICE_CLIPS = {
    "en+f2-p60-s150": "asr-000002.wav",
    "en+m7-p35-s175": "tts-000003.wav",
    "ko+m3-p50-s160": "spoken_vqa-000004-question.wav",
    "ko+m7-p35-s175": "spoken_vqa-000004-answer.wav",
}


def _voice_clip(voice: str) -> tuple[int, np.ndarray]:
    wave, rate = sf.read(EXAMPLE_MEDIA / VOICE_CLIPS[voice], dtype="float32")
    return rate, wave


@pytest.mark.parametrize("voice", sorted(VOICE_CLIPS))
def test_shipped_speaker_encoder_recognises_the_voice_of_a_reference_clip(voice: str) -> None:
    vocoder = load_decoder(SHIPPED_VOCODER)
    similarity = vocoder.speaker_table @ vocoder.speaker_vector(_voice_clip(voice))
    assert vocoder.config.speakers[int(similarity.argmax())] == voice


def test_zero_shot_synthesis_sounds_like_the_reference_voice() -> None:
    """Units of one sentence, decoded with a reference clip of voice A and of voice B: each
    resynthesis is closer (speaker-encoder cosine) to its own reference's voice than the other
    resynthesis is."""
    from tokenizers_mm.audio import SpeechUnitTokenizer

    vocoder = load_decoder(SHIPPED_VOCODER)
    tokenizer = SpeechUnitTokenizer.from_pretrained(
        SHIPPED_VOCODER.parents[1] / "tokenizers" / "speech"
    )
    wave, rate = sf.read(SHIPPED_VOCODER.parents[1] / "examples" / "sentence.wav", dtype="float32")
    units = tokenizer.encode(wave, sample_rate=rate)
    voices = ["en+f2-p60-s150", "en+m7-p35-s175"]
    table = {name: vocoder.speaker_table[vocoder.config.speakers.index(name)] for name in voices}
    heard = {}
    for voice in voices:
        out_rate, out = vocoder.decode(units, speaker=_voice_clip(voice))
        heard[voice] = vocoder.speaker_vector((out_rate, out))
    female, male = voices
    assert heard[female] @ table[female] > heard[male] @ table[female] + 0.2
    assert heard[male] @ table[male] > heard[female] @ table[male] + 0.2


def test_streaming_equals_whole_utterance(vocoder: UnitVocoder) -> None:
    units = torch.randint(0, 32, (60,), generator=torch.Generator().manual_seed(1))
    _, whole = vocoder.decode(units, speaker="alice")
    chunks = list(vocoder.stream((units[i : i + 15] for i in range(0, 60, 15)), "alice"))
    streamed = np.concatenate(chunks)
    assert streamed.shape == whole.shape
    assert np.sqrt(np.mean((streamed - whole) ** 2)) < 1e-5


def test_stream_context_covers_the_receptive_field(vocoder: UnitVocoder) -> None:
    # Perturbing one unit may change only audio within stream_context units of it.
    units = torch.randint(0, 32, (60,), generator=torch.Generator().manual_seed(2))
    changed = units.clone()
    changed[30] = (units[30] + 1) % 32
    _, a = vocoder.decode(units, speaker="alice")
    _, b = vocoder.decode(changed, speaker="alice")
    moved = np.nonzero(np.abs(a - b) > 1e-7)[0] // 160
    context = vocoder.config.stream_context
    assert moved.size > 0 and moved.min() >= 30 - context and moved.max() <= 30 + context


def test_first_chunk_arrives_after_the_first_input_chunk(vocoder: UnitVocoder) -> None:
    consumed = []

    def arriving():
        for i in range(4):
            consumed.append(i)
            yield list(range(i * 20, i * 20 + 20))

    first = next(vocoder.stream(arriving(), "alice"))
    assert consumed == [0]
    assert first.shape == ((20 - vocoder.config.stream_context) * 160,)


def test_units_arriving_one_by_one_stream_in_growing_pieces(vocoder: UnitVocoder) -> None:
    # The pipeline hands the vocoder one unit per decoding step: the pieces start small (the
    # first audio comes early) and double, so the windows' context is not paid per unit.
    units = torch.randint(0, 32, (120,), generator=torch.Generator().manual_seed(3))
    _, whole = vocoder.decode(units, speaker="alice")
    synthesised = []
    original = vocoder.synthesize

    def counting(window, voice):
        synthesised.append(window.numel())
        return original(window, voice)

    with mock.patch.object(vocoder, "synthesize", side_effect=counting):
        pieces = list(vocoder.stream(([int(u)] for u in units), "alice", 4, 32))
    sizes = [len(p) // 160 for p in pieces]
    context = vocoder.config.stream_context
    assert sizes[:4] == [4, 8, 16, 32] and set(sizes[4:-1]) <= {32} and sum(sizes) == 120
    assert sizes[-1] <= 32 + context  # the last piece: what was held back, plus the rest
    assert np.sqrt(np.mean((np.concatenate(pieces) - whole) ** 2)) < 1e-5
    assert sum(synthesised) < 3 * units.numel() < (2 * context + 1) * units.numel() / 4


@pytest.mark.parametrize(("first", "most"), [(0, 8), (8, 4)])
def test_bad_stream_piece_sizes_raise(vocoder: UnitVocoder, first: int, most: int) -> None:
    with pytest.raises(ValueError, match="1 <= first_units <= max_units"):
        next(vocoder.stream([[1, 2]], "alice", first, most))


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ([0, 5, 32], "out of range"),
        ([-1, 2], "out of range"),
        ([], "empty"),
        ([[1, 2]], "dimension"),
        ([0.5, 1.0], "integers"),
    ],
)
def test_bad_units_raise_value_error(vocoder: UnitVocoder, units: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vocoder.decode(units, speaker="alice")


def test_unknown_speaker_names_the_known_voices(vocoder: UnitVocoder) -> None:
    with pytest.raises(ValueError, match="unknown speaker 'carol'.*alice, bob"):
        vocoder.decode([1, 2], speaker="carol")


def test_bad_speaker_embedding_shape_raises(vocoder: UnitVocoder) -> None:
    with pytest.raises(ValueError, match="shape"):
        vocoder.decode([1, 2], speaker=torch.zeros(5))


def test_empty_stream_raises(vocoder: UnitVocoder) -> None:
    with pytest.raises(ValueError, match="empty"):
        list(vocoder.stream([[], []], "alice"))


def test_config_rejects_factors_that_miss_the_hop() -> None:
    with pytest.raises(ValueError, match="multiply to"):
        VocoderConfig(upsample_factors=[8, 8, 5])


def test_save_load_round_trip_is_exact(vocoder: UnitVocoder, tmp_path) -> None:
    vocoder.save_pretrained(tmp_path)
    loaded = load_decoder(tmp_path)
    assert isinstance(loaded, UnitVocoder)
    assert loaded.config == vocoder.config
    units = [4, 8, 15, 16, 23, 31]
    assert np.array_equal(loaded.decode(units, "bob")[1], vocoder.decode(units, "bob")[1])


def test_discriminator_losses_have_the_lsgan_values() -> None:
    torch.manual_seed(0)
    discriminator = VocoderDiscriminator(periods=(2, 3), resolutions=((64, 16),))
    real, fake = torch.randn(2, 1600) * 0.1, torch.randn(2, 1600) * 0.1
    real_scores, fake_scores = discriminator(real), discriminator(fake)
    assert len(real_scores) == 3
    ones = [(torch.ones_like(s), f) for s, f in real_scores]
    zeros = [(torch.zeros_like(s), f) for s, f in fake_scores]
    assert discriminator_loss(ones, zeros).item() == 0.0
    assert generator_adversarial_loss(ones).item() == 0.0
    assert feature_matching_loss(real_scores, real_scores).item() == 0.0
    assert feature_matching_loss(real_scores, fake_scores).item() > 0.0


def test_a_few_generator_steps_lower_the_mel_loss() -> None:
    torch.manual_seed(0)
    model = UnitVocoder(tiny_config())
    mel_loss = MultiResolutionMelLoss(RATE, ((128, 32, 16), (256, 64, 24)))
    units = torch.randint(0, 32, (2, 12))
    target = torch.sin(torch.arange(12 * 160) * 0.3).repeat(2, 1) * 0.5
    voice = torch.randn(2, 8)
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    losses = []
    for _ in range(15):
        loss = mel_loss(model(units, voice), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def _toy_clips() -> list[SpeechClip]:
    rng = torch.Generator().manual_seed(0)
    clips = []
    for speaker, pitch in (("low", 0.05), ("high", 0.4)):
        for _ in range(3):
            units = torch.randint(0, 32, (20,), generator=rng)
            wave = torch.sin(torch.arange(20 * 160) * pitch) * 0.3
            clips.append(
                SpeechClip(wave + 0.01 * torch.randn(20 * 160, generator=rng), units, speaker)
            )
    return clips


def test_train_vocoder_saves_and_resumes(tmp_path) -> None:
    torch.manual_seed(0)
    config = VocoderTrainConfig(
        output=str(tmp_path), steps=4, speaker_steps=2, gan_start=1, batch_size=2,
        segment_units=8, speaker_crop_seconds=0.5, checkpoint_every=2,
    )  # fmt: skip
    model = train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config)
    assert model.config.speakers == ["high", "low"]
    saved = UnitVocoder.from_pretrained(tmp_path / "vocoder")
    assert torch.equal(saved.speaker_table, model.speaker_table)
    # Resuming at the final step trains nothing more and keeps the weights.
    config.steps = 4
    again = train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, kill_during_call):
    """The clip sampler and torch's generator resume with the step (GAN phase included)."""

    def config(folder: str) -> VocoderTrainConfig:
        return VocoderTrainConfig(
            output=str(tmp_path / folder), steps=4, speaker_steps=1, gan_start=1,
            batch_size=2, segment_units=8, speaker_crop_seconds=0.5, checkpoint_every=2,
        )  # fmt: skip

    torch.manual_seed(0)
    whole = train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config("a"))
    torch.manual_seed(0)
    kill = (UnitVocoder, "forward", 3, train_vocoder, UnitVocoder(tiny_config()), _toy_clips())
    kill_during_call(*kill, config("b"))
    torch.manual_seed(1)  # whatever the state of a new process
    resumed = train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config("b"))
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_uses_the_configured_learning_rate_and_decay(tmp_path) -> None:
    import json

    torch.manual_seed(0)
    config = VocoderTrainConfig(
        output=str(tmp_path), steps=3, speaker_steps=2, gan_start=10, batch_size=2,
        segment_units=8, speaker_crop_seconds=0.5, checkpoint_every=3,
    )  # fmt: skip
    train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config)
    config.steps, config.lr = 4, 5e-5  # fine-tune the checkpoint at a lower rate
    train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config)
    groups = json.loads((tmp_path / "checkpoint" / "state.json").read_text())["param_groups"]
    assert groups["generator"][0]["lr"] == groups["discriminator"][0]["lr"] == 5e-5
    assert groups["speaker"][0]["lr"] == config.speaker_lr
    # with a decay over the last 4 of 8 steps, the last step (7) runs at a quarter of the lr
    config.steps, config.decay_steps = 8, 4
    train_vocoder(UnitVocoder(tiny_config()), _toy_clips(), config)
    groups = json.loads((tmp_path / "checkpoint" / "state.json").read_text())["param_groups"]
    assert groups["generator"][0]["lr"] == pytest.approx(5e-5 / 4)


def test_train_rejects_a_speaker_count_mismatch(tmp_path) -> None:
    with pytest.raises(ValueError, match="voices"):
        train_vocoder(
            UnitVocoder(tiny_config(num_speakers=3)),
            _toy_clips(),
            VocoderTrainConfig(str(tmp_path)),
        )


def test_warm_start_copies_all_but_the_resized_unit_table() -> None:
    source, target = UnitVocoder(tiny_config(num_units=32)), UnitVocoder(tiny_config(num_units=40))
    fresh = warm_start(target, source)
    assert fresh == ["unit_embedding.weight"]
    assert torch.equal(target.generator.conv_in.weight, source.generator.conv_in.weight)


def test_training_state_round_trip(tmp_path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), 0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_training_state(tmp_path, 7, {"m": model}, {"o": optimizer})
    other = torch.nn.Linear(3, 2)
    other_optimizer = torch.optim.AdamW(other.parameters(), 0.1)
    assert load_training_state(tmp_path, {"m": other}, {"o": other_optimizer}) == 7
    assert torch.equal(other.weight, model.weight)
    a, b = optimizer.state_dict()["state"][0], other_optimizer.state_dict()["state"][0]
    assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_encodec_decoder_wraps_the_tokenizer(tmp_path) -> None:
    from decoders.encodec import EncodecDecoder
    from tokenizers_mm.encodec import EncodecConfig, EncodecTokenizer

    torch.manual_seed(0)
    decoder = EncodecDecoder(EncodecTokenizer(EncodecConfig.micro())).eval()
    codes = torch.randint(0, 1024, (2, 5))
    rate, wave = decoder.decode(codes)
    assert rate == 24000 and wave.shape == (5 * 320,)
    decoder.save_pretrained(tmp_path)
    loaded = load_decoder(tmp_path)
    assert np.array_equal(loaded.decode(codes)[1], wave)
    with pytest.raises(ValueError):
        decoder.decode(torch.zeros(2, 0, dtype=torch.long))


# -- the benchmark's metrics (training.decoder_metrics): mel-cepstral distortion, unit-mel baseline, intervals


def _vowel(formants: list[float], f0: float = 120.0, rate: int = 16000) -> torch.Tensor:
    """0.6 s of a harmonic 'vowel' shaped by resonances, with 0.1 s of digital silence."""
    t = torch.arange(int(0.6 * rate)) / rate
    wave = torch.zeros_like(t)
    for h in range(1, int(rate / 2 / f0)):
        gain = sum(1 / (1 + ((h * f0 - f) / 80.0) ** 2) for f in formants) + 0.01
        wave += gain * torch.sin(2 * np.pi * h * f0 * t + h)
    wave = 0.3 * wave / wave.abs().max()
    wave[len(t) // 2 : len(t) // 2 + rate // 10] = 0
    return wave


def test_mcd_is_zero_small_and_large_on_known_cases() -> None:
    import torchaudio

    a, b = _vowel([700, 1200, 2600]), _vowel([300, 2300, 3000])
    noisy = a + 0.003 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))
    assert mcd(a, a) == pytest.approx(0.0, abs=1e-6)
    small, large = mcd(a, noisy), mcd(a, b)
    assert 0.0 < small < 2.5  # ~37 dB SNR: a small distortion
    # another vowel: clearly larger, yet in the usual MCD range (the old code, DCT-ortho of
    # log *power* over 80 bands, read ~25x too high: a few dB came out as 100+ dB)
    assert 4.0 < large < 15.0 and large > 2 * small
    assert mcd(a, 0.5 * a) < 0.5  # level is c0, which MCD leaves out
    assert mcd(a, a + 1e-6 * torch.randn(a.shape)) < 0.05  # silence vs near-silence: floor
    assert mcd(a, a[:-300]) < 0.5  # a shorter signal is zero-padded, frames stay aligned
    at_24k = torchaudio.functional.resample(a, 16000, 24000)
    assert mcd(a, at_24k, 16000, 24000) < 1.0  # compared at the reference's rate
    assert mcd(a, at_24k[: a.numel()]) > 5.0  # ... which matters: unresampled is far off


def test_unit_mel_table_averages_each_units_frames_per_voice() -> None:
    hop = 640  # 25 Hz at 16 kHz
    a, b = _vowel([700, 1200, 2600])[: 8 * hop], _vowel([300, 2300, 3000])[: 8 * hop]
    log_a = torch.log(mel_frames(a, hop).clamp(min=1e-10)).T
    log_b = torch.log(mel_frames(b, hop).clamp(min=1e-10)).T
    units = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2])
    clips = [{"wave": a, "units": units, "voice": "x"}, {"wave": b, "units": units, "voice": "y"}]
    table = unit_mel_table(clips, num_units=4, hop=hop)
    torch.testing.assert_close(table["x"][0], log_a[:2].mean(0))
    torch.testing.assert_close(table["y"][2], log_b[5:8].mean(0))
    # unit 3 was never spoken: the overall mean frame, in both voices
    overall = torch.cat([log_a[:8], log_b[:8]]).mean(0)
    torch.testing.assert_close(table["x"][3], overall)
    # Griffin-Lim from a voice's table returns a wave as long as asked
    wave = unit_griffin_lim({"units": units, "voice": "x", "wave": a}, table, hop)
    assert wave.shape == a.shape and torch.isfinite(wave).all()


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson_interval(0.9, 400)
    assert low == pytest.approx(0.8667, abs=1e-3) and high == pytest.approx(0.9257, abs=1e-3)
    # all right or all wrong: the interval touches the bound and still has width
    assert wilson_interval(1.0, 10)[1] == pytest.approx(1.0) and wilson_interval(1.0, 10)[0] < 0.75
    assert (
        wilson_interval(0.0, 10)[0] == pytest.approx(0.0, abs=1e-12)
        and wilson_interval(0.0, 10)[1] > 0.25
    )


def test_remap_starts_new_units_from_the_old_units_they_cover() -> None:
    source, target = UnitVocoder(tiny_config(num_units=4)), UnitVocoder(tiny_config(num_units=3))
    old_table = source.unit_embedding.weight.detach()
    # new unit 0 always sits on old unit 1; new unit 1 on old 2 three times and on old 3 once;
    # new unit 2 never occurs.
    pairs = [
        (torch.tensor([0, 0, 1, 1]), torch.tensor([1, 1, 2, 2])),
        (torch.tensor([1, 1]), torch.tensor([2, 3, 0])),
    ]
    purity = remap_unit_embeddings(target, source, pairs)
    table = target.unit_embedding.weight.detach()
    torch.testing.assert_close(table[0], old_table[1])
    torch.testing.assert_close(table[1], (3 * old_table[2] + old_table[3]) / 4)
    torch.testing.assert_close(table[2], old_table.mean(0))
    assert purity == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="no frames"):
        remap_unit_embeddings(target, source, [])


def test_cli_init_tokenizer_needs_init_from(tmp_path, capsys) -> None:
    from omni.cli import main

    args = ["train", "vocoder", "--data", str(tmp_path), "--tokenizer", str(tmp_path)]
    assert main([*args, "--init-tokenizer", str(tmp_path)]) == 2
    assert "--init-tokenizer needs --init-from" in capsys.readouterr().err
