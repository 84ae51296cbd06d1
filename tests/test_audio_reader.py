"""The one audio reader (omni.common.audio): files, bytes, arrays, integer PCM, stereo."""

import io

import numpy as np
import pytest
import soundfile
import torch

from encoders.audio import log_mel
from omni.common.audio import read_audio, to_mono


def tone(seconds=0.25, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def as_int16(wave):
    return np.round(wave * 32767).astype(np.int16)


@pytest.fixture
def stereo():
    """Two different channels, ``[frames, 2]``."""
    return np.stack([tone(freq=440.0), tone(freq=660.0) * 0.5], axis=1)


def test_a_file_is_wave_then_rate_in_float32(tmp_path):
    wave = tone()
    soundfile.write(tmp_path / "a.wav", wave, 16000, subtype="PCM_16")
    samples, rate = read_audio(tmp_path / "a.wav")
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == wave.shape
    np.testing.assert_allclose(samples, wave, atol=1 / 32768)
    path_string, _ = read_audio(str(tmp_path / "a.wav"))
    np.testing.assert_array_equal(path_string, samples)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_file_bytes_and_file_objects_read_like_the_file(tmp_path, fmt):
    suffix = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}[fmt]
    soundfile.write(tmp_path / f"a.{suffix}", tone(), 16000, format=fmt)
    from_file = read_audio(tmp_path / f"a.{suffix}")
    data = (tmp_path / f"a.{suffix}").read_bytes()
    for source in (data, io.BytesIO(data)):
        samples, rate = read_audio(source)
        assert rate == from_file[1]
        np.testing.assert_array_equal(samples, from_file[0])


def test_a_stereo_file_is_the_mean_of_its_channels(tmp_path, stereo):
    soundfile.write(tmp_path / "s.wav", stereo, 16000, subtype="FLOAT")
    samples, _ = read_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(samples, stereo.mean(axis=1), atol=1e-7)


def test_stereo_arrays_downmix_the_same_way_channels_first_or_last(stereo):
    last, _ = read_audio((16000, stereo))
    first, _ = read_audio((16000, stereo.T))
    tensor, _ = read_audio(torch.from_numpy(stereo.T.copy()), sample_rate=16000)
    np.testing.assert_allclose(last, stereo.mean(axis=1), atol=1e-7)
    np.testing.assert_array_equal(first, last)
    np.testing.assert_array_equal(tensor, last)


def test_pairs_are_read_in_either_order():
    wave = tone()
    a = read_audio((22050, wave))
    b = read_audio((wave, 22050))
    c = read_audio((torch.tensor(22050), torch.from_numpy(wave)))
    assert a[1] == b[1] == c[1] == 22050
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], c[0])


@pytest.mark.parametrize(
    ("dtype", "full_scale", "zero"),
    [(np.int16, 32768, 0), (np.int32, 2**31, 0), (np.int8, 128, 0), (np.uint8, 128, 128)],
)
def test_integer_pcm_is_scaled_by_its_dtype_range(dtype, full_scale, zero):
    info = np.iinfo(dtype)
    pcm = np.array([info.min, zero, info.max], dtype=dtype)
    expected = (pcm.astype(np.float64) - zero) / full_scale
    for source in (pcm, torch.from_numpy(pcm)):
        samples, _ = read_audio((8000, source))
        np.testing.assert_allclose(samples, expected, atol=1e-7)
    assert samples[0] == -1.0 and 0.99 < samples[2] <= 1.0


def test_int16_and_float_waves_give_the_same_log_mel():
    wave = tone(0.5)
    pcm = as_int16(wave)
    from_float = log_mel(pcm.astype(np.float32) / 32768, 16000)
    for source in (pcm, torch.from_numpy(pcm)):
        assert torch.allclose(log_mel(source, 16000), from_float, atol=1e-5)
    assert torch.allclose(log_mel(to_mono(pcm), 16000), from_float, atol=1e-5)


def test_a_target_rate_resamples():
    samples, rate = read_audio((8000, tone(0.5, 8000)), target_rate=16000)
    assert rate == 16000 and samples.shape == (8000,)
    same, rate = read_audio((16000, tone(0.5)), target_rate=16000)
    assert rate == 16000 and same.shape == (8000,)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ((16000, np.arange(10, dtype=np.int64)), "dtype int64"),
        ((16000, np.zeros(0, np.float32)), "empty"),
        ((16000, np.array([0.0, np.nan], np.float32)), "NaN"),
        ((0, np.zeros(100, np.float32)), "invalid sample rate 0"),
        ((16000.5, np.zeros(100, np.float32)), "invalid sample rate"),
        ((16000, np.zeros((2, 3, 4), np.float32)), "must be \\[samples\\]"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "cannot read audio from the audio bytes"),
        (42, "cannot read audio from a int"),
    ],
)
def test_bad_audio_is_a_value_error_naming_the_problem(source, message):
    with pytest.raises(ValueError, match=message):
        read_audio(source)


def test_a_raw_array_needs_its_rate_and_a_bad_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="needs sample_rate"):
        read_audio(np.zeros(100, np.float32))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(ValueError, match=f"cannot read audio from {broken}"):
        read_audio(broken)
