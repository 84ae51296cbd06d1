"""EnCodec codes: shapes at 75 Hz, bandwidth -> codebooks, round trips, checkpoints, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tokenizers_mm.encodec import (
    EncodecConfig,
    EncodecTokenizer,
    EncodecTrainConfig,
    train_encodec,
)


@pytest.fixture(scope="module")
def tokenizer() -> EncodecTokenizer:
    torch.manual_seed(0)
    return EncodecTokenizer(EncodecConfig.micro()).eval()


def _tone(seconds: float, sample_rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    return np.stack([wave] * channels) if channels > 1 else wave


@pytest.mark.parametrize(
    ("seconds", "sample_rate", "channels"),
    [(1.0, 24_000, 1), (0.5, 8_000, 1), (0.37, 22_050, 1), (1.2, 44_100, 2), (0.8, 48_000, 2)],
)
def test_frames_follow_75_hz(tokenizer, seconds, sample_rate, channels):
    wave = _tone(seconds, sample_rate, channels)
    codes = tokenizer.encode(wave, sample_rate)
    assert codes.shape == (8, math.ceil(seconds * 75))
    assert codes.shape[1] == tokenizer.frames_for(wave.shape[-1], sample_rate)
    assert codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < 1024


def test_samples_last_stereo_is_downmixed_like_channels_first(tokenizer):
    stereo = _tone(0.4, 24_000, 2)
    assert torch.equal(tokenizer.encode(stereo, 24_000), tokenizer.encode(stereo.T, 24_000))


@pytest.mark.parametrize(("bandwidth", "n_q"), [(1.5, 2), (3.0, 4), (6.0, 8)])
def test_bandwidth_chooses_codebooks(bandwidth, n_q):
    tokenizer = EncodecTokenizer(EncodecConfig.micro())
    tokenizer.set_bandwidth(bandwidth)
    assert tokenizer.n_q == n_q
    assert tokenizer.codes_per_second == 75 * n_q
    assert tokenizer.encode(_tone(0.2, 24_000), 24_000).shape == (n_q, 15)


def test_full_config_is_the_published_shape():
    tokenizer = EncodecTokenizer(EncodecConfig(bandwidth=24.0))
    assert tokenizer.frame_rate == 75
    assert tokenizer.n_q == 32
    assert tokenizer.codebook_size == 1024
    assert tokenizer.model.encoder.hop_length == 320


def test_decode_gives_24khz_float32_of_the_code_length(tokenizer):
    codes = tokenizer.encode(_tone(0.5, 16_000), 16_000)
    sample_rate, wave = tokenizer.decode(codes)
    assert sample_rate == 24_000
    assert wave.dtype == np.float32 and wave.shape == (codes.shape[1] * 320,)
    assert np.isfinite(wave).all()
    fewer_sample_rate, fewer = tokenizer.decode(codes[:2])
    assert fewer.shape == wave.shape


def test_encode_is_deterministic(tokenizer):
    wave = _tone(0.3, 24_000)
    assert torch.equal(tokenizer.encode(wave, 24_000), tokenizer.encode(wave, 24_000))


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN"),
        (np.array([0.1, np.inf, 0.2], dtype=np.float32), "infinite"),
        (np.zeros((2, 3, 4), dtype=np.float32), "samples"),
    ],
)
def test_bad_audio_is_a_value_error(tokenizer, wave, message):
    with pytest.raises(ValueError, match=message):
        tokenizer.encode(wave, 24_000)


def test_bad_sample_rate_and_bandwidth_are_value_errors(tokenizer):
    with pytest.raises(ValueError, match="sample_rate"):
        tokenizer.encode(_tone(0.1, 24_000), 0)
    with pytest.raises(ValueError, match="bandwidth"):
        tokenizer.set_bandwidth(24.0)
    with pytest.raises(ValueError, match="bandwidth"):
        EncodecConfig(bandwidth=5.0)


@pytest.mark.parametrize(
    "codes",
    [
        torch.zeros(8, 0, dtype=torch.long),
        torch.zeros(9, 4, dtype=torch.long),
        torch.full((2, 4), 1024),
        torch.zeros(4),
        torch.zeros(2, 4),
    ],
)
def test_bad_codes_are_value_errors(tokenizer, codes):
    with pytest.raises(ValueError, match="codes|codebooks"):
        tokenizer.decode(codes)


def test_save_pretrained_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = EncodecTokenizer.from_pretrained(tmp_path)
    wave = _tone(0.4, 24_000)
    codes = tokenizer.encode(wave, 24_000)
    assert torch.equal(loaded.encode(wave, 24_000), codes)
    np.testing.assert_array_equal(loaded.decode(codes)[1], tokenizer.decode(codes)[1])
    assert loaded.config == tokenizer.config


def test_from_published_loads_a_tensors_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    published = EncodecTokenizer(EncodecConfig())
    path = tmp_path / "encodec_24khz-d7cc33bc.th"
    torch.save(published.model.state_dict(), path)
    loaded = EncodecTokenizer.from_published(path, bandwidth=1.5)
    wave = _tone(0.2, 24_000)
    published.set_bandwidth(1.5)
    assert loaded.n_q == 2
    assert torch.equal(loaded.encode(wave, 24_000), published.encode(wave, 24_000))


def test_from_published_refuses_what_is_not_a_tensor_state_dict(tmp_path):
    path = tmp_path / "not_weights.th"
    torch.save({"weights": "a string"}, path)
    with pytest.raises(ValueError, match="tensors"):
        EncodecTokenizer.from_published(path)
    with pytest.raises(ValueError, match="does not exist"):
        EncodecTokenizer.from_published(tmp_path / "missing.th")


def test_training_lowers_the_loss_and_resumes_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    tokenizer = EncodecTokenizer(EncodecConfig.micro())
    clips = [(_tone(0.6, 24_000), 24_000), (_tone(0.6, 16_000, 2) * 0.5, 16_000)]
    config = EncodecTrainConfig(steps=8, batch_size=2, segment_seconds=0.2, checkpoint_every=4)
    losses = train_encodec(tokenizer, clips, config, tmp_path)
    assert len(losses) == 8
    assert np.mean(losses[-3:]) < losses[0]
    assert (tmp_path / "model.safetensors").is_file()
    resumed = train_encodec(
        EncodecTokenizer(EncodecConfig.micro()),
        clips,
        EncodecTrainConfig(steps=9, batch_size=2, segment_seconds=0.2),
        tmp_path,
    )
    assert len(resumed) == 1  # picked up at step 8 from out_dir/checkpoint


def test_a_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, kill_during_call):
    """The segment sampler (crops and bandwidths) resumes with the step."""
    from encodec.modules import SEANetDecoder

    clips = [(_tone(0.6, 24_000), 24_000), (_tone(0.4, 24_000) * 0.5, 24_000)]
    config = EncodecTrainConfig(steps=4, batch_size=2, segment_seconds=0.2, checkpoint_every=2)

    def fresh() -> EncodecTokenizer:
        torch.manual_seed(0)
        return EncodecTokenizer(EncodecConfig.micro())

    whole = fresh()
    train_encodec(whole, clips, config, tmp_path / "a")
    kill = (SEANetDecoder, "forward", 3, train_encodec, fresh(), clips, config, tmp_path / "b")
    kill_during_call(*kill)
    resumed = fresh()
    assert len(train_encodec(resumed, clips, config, tmp_path / "b")) == 2
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_cli_trains_encodec_from_a_manifest(tmp_path):
    import json

    import soundfile

    from omni.cli import main

    (tmp_path / "media").mkdir()
    records = []
    for index, rate in enumerate((16_000, 24_000)):
        soundfile.write(tmp_path / f"media/{index}.wav", _tone(0.5, rate), rate)
        segment = {"type": "audio", "path": f"media/{index}.wav", "text": "a tone"}
        turns = [{"role": "assistant", "segments": [segment]}]
        records.append({"id": str(index), "split": "train", "turns": turns})
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    out = tmp_path / "encodec"
    argv = ["train", "tokenizer", "--kind", "encodec", "--data", str(tmp_path), "--out", str(out)]
    assert main([*argv, "--steps", "2", "--batch-size", "2", "--bandwidth", "3.0"]) == 0
    loaded = EncodecTokenizer.from_pretrained(out)
    assert loaded.n_q == 4
    assert loaded.encode(_tone(0.2, 24_000), 24_000).shape == (4, 15)
