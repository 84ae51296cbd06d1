"""Audio path: Whisper log-mel parity, resampling/downmix, windows, projector rate, round trip."""

import math

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from encoders import AudioEncoder, ContinuousEncoder, build_encoder, log_mel

SHORT_WINDOWS = {"max_source_positions": 100}  # 2 s windows keep windowing tests fast


def tone(seconds: float, rate: int, channels: int = 0) -> np.ndarray:
    """A 440 Hz tone with a little noise; ``channels`` > 0 gives a [channels, samples] array."""
    rng = np.random.default_rng(0)
    t = np.arange(int(round(seconds * rate))) / rate
    mono = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    if channels:
        return np.stack([mono * (c + 1) / channels for c in range(channels)]).astype(np.float32)
    return mono.astype(np.float32)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_whisper_feature_extractor_unpadded(n_mels):
    signal = tone(2.37, 16_000)
    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    expected = extractor(signal, sampling_rate=16_000, padding="longest", return_tensors="np")
    expected = expected["input_features"][0]
    ours = log_mel(signal, 16_000, n_mels).numpy()
    assert ours.shape == expected.shape == (n_mels, 237)
    assert np.abs(ours - expected).max() < 1e-3


@pytest.mark.parametrize("n_mels", [80, 128])
def test_encoder_window_matches_whisper_feature_extractor_padded_to_30s(n_mels):
    signal = tone(1.5, 16_000)
    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    expected = extractor(signal, sampling_rate=16_000, return_tensors="np")["input_features"][0]
    encoder = AudioEncoder(whisper={"num_mel_bins": n_mels})
    item = encoder.preprocess(signal, sample_rate=16_000)
    assert item.mel.shape == (1, n_mels, 3000)
    assert item.real_frames == [150]
    assert np.abs(item.mel[0].numpy() - expected).max() < 1e-3


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 44_100, 48_000])
def test_any_sample_rate_gives_100_frames_per_second(rate):
    assert log_mel(tone(1.0, rate), rate).shape == (80, 100)
    assert log_mel(tone(2.5, rate), rate).shape == (80, 250)


def test_stereo_channels_first_and_last_are_downmixed():
    stereo = tone(1.0, 44_100, channels=2)  # [2, samples]
    first = log_mel(stereo, 44_100)
    last = log_mel(stereo.T, 44_100)
    mono = log_mel(stereo.mean(axis=0), 44_100)
    assert first.shape == last.shape == (80, 100)
    torch.testing.assert_close(first, mono)
    torch.testing.assert_close(last, mono)


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (np.zeros(0, np.float32), "empty"),
        (np.array([0.1, np.nan] * 800, np.float32), "NaN or infinite"),
        (np.array([0.1, np.inf] * 800, np.float32), "NaN or infinite"),
        (np.zeros(100, np.float32), "too short"),
        (np.zeros((2, 3, 4), np.float32), "shape"),
    ],
)
def test_bad_audio_raises_value_error_that_says_why(signal, message):
    with pytest.raises(ValueError, match=message):
        log_mel(signal, 16_000)


def test_encoder_rejects_bad_audio_and_missing_rate():
    encoder = AudioEncoder(whisper=SHORT_WINDOWS)
    with pytest.raises(ValueError, match="empty"):
        encoder.preprocess(np.zeros(0), sample_rate=16_000)
    with pytest.raises(ValueError, match="sample_rate"):
        encoder.preprocess(tone(1.0, 16_000))
    with pytest.raises(ValueError, match="rate_hz"):
        AudioEncoder(rate_hz=30)


@pytest.mark.parametrize(
    ("rate_hz", "seconds", "tokens"), [(25, 1.0, 25), (12.5, 1.0, 13), (25, 3.0, 75)]
)
def test_projector_emits_tokens_at_the_configured_rate(rate_hz, seconds, tokens):
    encoder = AudioEncoder(whisper=SHORT_WINDOWS, out_dim=48, rate_hz=rate_hz)
    item = encoder.preprocess(tone(seconds, 16_000), sample_rate=16_000)
    (embeddings,) = encoder([item])
    assert encoder.num_tokens(item) == tokens
    assert embeddings.shape == (tokens, 48)
    assert torch.isfinite(embeddings).all()


def test_long_audio_is_windowed_and_tokens_grow_with_duration():
    encoder = AudioEncoder(whisper=SHORT_WINDOWS, out_dim=32)  # windows of 2 s
    item = encoder.preprocess(tone(5.3, 16_000), sample_rate=16_000)
    assert item.mel.shape == (3, 80, 200)
    assert item.real_frames == [200, 200, 130]
    assert encoder.hidden_states(item).shape == (265, 64)  # 50 Hz frames of real audio only
    outputs = encoder([item, encoder.preprocess(tone(1.0, 16_000), sample_rate=16_000)])
    assert [out.shape[0] for out in outputs] == [math.ceil(265 / 2), 25]


def test_padding_frames_do_not_change_real_frames():
    """A clip's embeddings depend on its own window only, not on what it is batched with."""
    encoder = AudioEncoder(whisper=SHORT_WINDOWS, out_dim=32).eval()
    short = encoder.preprocess(tone(1.0, 16_000), sample_rate=16_000)
    long = encoder.preprocess(tone(4.5, 16_000), sample_rate=16_000)
    with torch.no_grad():
        alone = encoder([short])[0]
        batched = encoder([long, short])[1]
    torch.testing.assert_close(alone, batched)


def test_save_and_load_reproduce_outputs_exactly(tmp_path):
    encoder = AudioEncoder(whisper=SHORT_WINDOWS, out_dim=32, rate_hz=12.5).eval()
    item = encoder.preprocess(tone(2.7, 22_050, channels=2).T, sample_rate=22_050)
    encoder.save_pretrained(tmp_path)
    loaded = ContinuousEncoder.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, AudioEncoder)
    assert loaded.to_config() == encoder.to_config()
    with torch.no_grad():
        assert torch.equal(encoder([item])[0], loaded([item])[0])


def test_build_encoder_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown audio encoder options"):
        build_encoder({"type": "audio", "rate": 25})
    with pytest.raises(ValueError, match="'type'"):
        build_encoder({"out_dim": 8})


def test_pretrained_whisper_folder_supplies_the_encoder_weights(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    from encoders.audio import MICRO_WHISPER

    whisper = WhisperModel(WhisperConfig(**{**MICRO_WHISPER, **SHORT_WINDOWS}))
    whisper.save_pretrained(tmp_path / "whisper")
    encoder = AudioEncoder(pretrained=str(tmp_path / "whisper"), out_dim=16)
    assert encoder.to_config()["whisper"]["max_source_positions"] == 100
    for name, tensor in whisper.encoder.state_dict().items():
        assert torch.equal(encoder.encoder.state_dict()[name], tensor), name
    with pytest.raises(ValueError, match="not found"):
        AudioEncoder(pretrained=str(tmp_path / "missing"))
