"""The HyperCLOVA X Omni encoder kinds: the Qwen2.5-VL vision transformer (``qwen2_5_vl_vision``)
and the Qwen2-Audio encoder (``qwen2_audio``), each with the projector OmniServe puts after it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders import ContinuousEncoder, QwenAudioEncoder, QwenVisionEncoder, build_encoder


def tone(seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def vision() -> QwenVisionEncoder:
    return QwenVisionEncoder(out_dim=24, min_pixels=64, max_pixels=32 * 32).eval()


def test_image_slots_follow_the_images_size_and_aspect(vision):
    wide, tall = vision.preprocess(picture(16, 32)), vision.preprocess(picture(32, 16))
    assert wide.grid_thw.tolist() == [1, 4, 8] and tall.grid_thw.tolist() == [1, 8, 4]
    assert vision.num_tokens(wide) == vision.num_tokens(tall) == 8  # 2x2 patches merged
    with torch.no_grad():
        outputs = vision([wide, tall, vision.preprocess(picture(8, 8))])
    assert [tuple(out.shape) for out in outputs] == [(8, 24), (8, 24), (1, 24)]


def test_each_image_is_encoded_on_its_own_in_a_batch(vision):
    one, other = vision.preprocess(picture(24, 24, 1)), vision.preprocess(picture(16, 40, 2))
    with torch.no_grad():
        torch.testing.assert_close(vision([one])[0], vision([other, one])[1])


def test_vision_encoder_saves_and_loads_exactly(vision, tmp_path):
    item = vision.preprocess(picture(20, 28))
    vision.save_pretrained(tmp_path)
    loaded = ContinuousEncoder.from_pretrained(tmp_path)
    assert isinstance(loaded, QwenVisionEncoder) and loaded.to_config() == vision.to_config()
    with torch.no_grad():
        assert torch.equal(vision([item])[0], loaded([item])[0])


def test_bad_vision_options_are_refused_by_name():
    with pytest.raises(ValueError, match="min_pixels <= max_pixels"):
        QwenVisionEncoder(min_pixels=4096, max_pixels=1024)
    with pytest.raises(ValueError, match="unknown qwen2_5_vl_vision encoder options"):
        build_encoder({"type": "qwen2_5_vl_vision", "image_size": 64})


@pytest.fixture(scope="module")
def audio() -> QwenAudioEncoder:
    return QwenAudioEncoder(out_dim=24).eval()


@pytest.mark.parametrize("seconds,tokens", [(1.0, 25), (2.5, 62), (31.0, 775)])
def test_audio_gives_25_tokens_a_second_of_128_bin_windows(audio, seconds, tokens):
    item = audio.preprocess((16_000, tone(seconds)))
    assert item.mel.shape[1:] == (128, 3000)
    assert audio.num_tokens(item) == tokens
    with torch.no_grad():
        assert audio([item])[0].shape == (tokens, 24)


def test_audio_padding_is_masked_so_a_clip_does_not_depend_on_its_batch(audio):
    short, long = audio.preprocess((16_000, tone(1.0))), audio.preprocess((16_000, tone(3.0)))
    with torch.no_grad():
        torch.testing.assert_close(audio([short])[0], audio([long, short])[1])


def test_audio_encoder_saves_and_loads_exactly(audio, tmp_path):
    item = audio.preprocess((16_000, tone(0.7)))
    audio.save_pretrained(tmp_path)
    loaded = ContinuousEncoder.from_pretrained(tmp_path)
    assert isinstance(loaded, QwenAudioEncoder) and loaded.to_config() == audio.to_config()
    with torch.no_grad():
        assert torch.equal(audio([item])[0], loaded([item])[0])


def test_audio_too_short_for_any_frame_is_refused(audio):
    with pytest.raises(ValueError, match="too short for the Qwen2-Audio encoder"):
        audio.preprocess((16_000, tone(0.014)))
