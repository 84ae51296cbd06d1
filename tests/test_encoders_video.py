"""Video path: frames sampled from a real mp4 at a set fps, capped, timestamped, encoded."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from encoders import VideoClip, VideoEncoder, VisionEncoder, build_encoder

MICRO_VISION = {"image_size": 32, "out_dim": 24, "token_budget": 16}  # 8x8 patches, 4x4 merged


def write_mp4(path, seconds: float = 2.0, fps: int = 10, size: int = 48) -> None:
    """An mp4 whose frame i is a flat grey of brightness proportional to i."""
    frames = int(seconds * fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            pixels = np.full((size, size, 3), int(255 * i / frames), np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def video_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_mp4(path)
    return path


def test_mp4_is_sampled_at_the_configured_fps_with_timestamps(video_path):
    encoder = VideoEncoder(MICRO_VISION, fps=2.0, max_frames=16, frame_budget=4)
    clip = encoder.preprocess(video_path)
    assert clip.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert clip.frames.shape == (4, 3, 32, 32)
    brightness = clip.frames.mean(dim=(1, 2, 3))
    assert torch.all(brightness[1:] > brightness[:-1])  # later frames are the brighter ones


def test_frame_cap_keeps_frames_spread_over_the_whole_clip(video_path):
    encoder = VideoEncoder(MICRO_VISION, fps=10.0, max_frames=3, frame_budget=4)
    clip = encoder.preprocess(video_path)
    assert clip.timestamps == pytest.approx([0.0, 1.0, 1.9])
    assert clip.frames.shape[0] == 3


def test_tokens_are_frames_times_per_frame_budget(video_path):
    encoder = VideoEncoder(MICRO_VISION, fps=2.0, frame_budget=4)
    clips = [encoder.preprocess(video_path), encoder.preprocess([Image.new("RGB", (20, 20))] * 3)]
    outputs = encoder(clips)
    assert [encoder.num_tokens(c) for c in clips] == [16, 12]
    assert [tuple(o.shape) for o in outputs] == [(16, 24), (12, 24)]


def test_image_list_gets_timestamps_from_fps_or_caller():
    encoder = VideoEncoder(MICRO_VISION, fps=4.0, frame_budget=1)
    frames = [Image.new("RGB", (10, 10), (i * 40, 0, 0)) for i in range(3)]
    assert encoder.preprocess(frames).timestamps == [0.0, 0.25, 0.5]
    assert encoder.preprocess(frames, timestamps=[1, 2, 5]).timestamps == [1.0, 2.0, 5.0]
    with pytest.raises(ValueError, match="timestamps"):
        encoder.preprocess(frames, timestamps=[0.0])


def test_shared_vision_encoder_uses_smaller_frame_budget():
    vision = VisionEncoder(**MICRO_VISION)
    video = VideoEncoder(vision, frame_budget=4)
    assert video.vision is vision
    clip = VideoClip(frames=torch.zeros(2, 3, 32, 32), timestamps=[0.0, 1.0])
    assert video([clip])[0].shape == (8, 24)
    with pytest.raises(ValueError, match="token budget"):
        VideoEncoder(vision, frame_budget=25)


def test_bad_video_input_raises_value_error(tmp_path):
    encoder = VideoEncoder(MICRO_VISION)
    with pytest.raises(ValueError, match="not found"):
        encoder.preprocess(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"definitely not a video")
    with pytest.raises(ValueError, match="cannot decode video"):
        encoder.preprocess(broken)
    with pytest.raises(ValueError, match="non-empty list"):
        encoder.preprocess([])


def test_save_and_load_reproduce_outputs_exactly(video_path, tmp_path):
    encoder = VideoEncoder(MICRO_VISION, fps=2.0, max_frames=3, frame_budget=4).eval()
    clip = encoder.preprocess(video_path)
    encoder.save_pretrained(tmp_path)
    loaded = VideoEncoder.from_pretrained(tmp_path).eval()
    assert loaded.to_config() == encoder.to_config()
    assert build_encoder(encoder.to_config()).to_config() == encoder.to_config()
    with torch.no_grad():
        assert torch.equal(encoder([clip])[0], loaded([clip])[0])
