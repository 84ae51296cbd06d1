"""Video path: frames sampled from a real mp4 at a set fps, capped, timestamped, encoded; a
model with a video encoder builds from its config, saves, loads and answers a clip."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

import omni
from encoders import VideoClip, VideoEncoder, VisionEncoder, build_encoder
from omni.presets import MICRO_ENCODERS, build_micro_pipeline

MICRO_VISION = {"image_size": 32, "out_dim": 24, "token_budget": 16}  # 8x8 patches, 4x4 merged


def write_clip(path, seconds=2.0, fps=10, size=48, codec="mpeg4") -> None:
    """A video whose frame i is a flat grey of brightness proportional to i (PyAV)."""
    frames = int(seconds * fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
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
    write_clip(path)
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


def test_build_encoder_takes_the_output_width_the_model_passes():
    encoder = build_encoder({"type": "video", "vision": MICRO_VISION, "out_dim": 40})
    clip = encoder.preprocess([Image.new("RGB", (32, 32))] * 2)
    assert encoder([clip])[0].shape == (8, 40)
    assert build_encoder(encoder.to_config()).to_config() == encoder.to_config()
    with pytest.raises(ValueError, match="out_dim=40"):
        VideoEncoder(VisionEncoder(**MICRO_VISION), out_dim=40)


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", "mp4"), ("libvpx", "webm")])
def test_video_bytes_decode_like_the_file(tmp_path, codec, suffix):
    path = tmp_path / f"clip.{suffix}"
    write_clip(path, seconds=1.0, fps=8, size=32, codec=codec)
    encoder = VideoEncoder(MICRO_VISION, fps=4.0)
    from_file, from_bytes = encoder.preprocess(path), encoder.preprocess(path.read_bytes())
    assert from_bytes.timestamps == from_file.timestamps == pytest.approx([0, 0.25, 0.5, 0.75])
    assert torch.equal(from_bytes.frames, from_file.frames)
    with pytest.raises(ValueError, match="cannot decode video the video bytes"):
        encoder.preprocess(path.read_bytes()[:200])


# --- a model with a video encoder, end to end ----------------------------------------------

VIDEO_ENCODER = {
    "type": "video",
    "vision": {"model_name": "micro-vit", "image_size": 32},
    "fps": 8.0,
    "max_frames": 8,
    "frame_budget": 1,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A tiny clip (8 frames of 32x32, 1 s) as an mp4 and as a webm."""
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "tiny.mp4", seconds=1.0, fps=8, size=32)
    write_clip(folder / "tiny.webm", seconds=1.0, fps=8, size=32, codec="libvpx")
    return folder


@pytest.fixture(scope="module")
def video_pipe():
    return build_micro_pipeline(encoders={**MICRO_ENCODERS, "video": VIDEO_ENCODER})


def test_a_model_config_with_a_video_encoder_saves_loads_and_answers_a_clip(
    video_pipe, clips, tmp_path
):
    question = "what happens in it?"
    before = omni.generate([str(clips / "tiny.mp4"), question], model=video_pipe, max_new_tokens=5)
    text_only = omni.generate(question, model=video_pipe, max_new_tokens=1)
    # 8 frames of 1 slot each, a timestamp before each, and the video markers
    assert before.usage["prompt_tokens"] >= text_only.usage["prompt_tokens"] + 8 * 2 + 2
    video_pipe.save_pretrained(tmp_path)
    loaded = omni.load(tmp_path)
    assert loaded.model.encoders["video"].to_config() == (
        video_pipe.model.encoders["video"].to_config()
    )
    after = omni.generate([str(clips / "tiny.mp4"), question], model=loaded, max_new_tokens=5)
    assert after.tokens == before.tokens and after.usage == before.usage


@pytest.mark.parametrize("name", ["tiny.mp4", "tiny.webm"])
def test_video_file_bytes_are_a_video_input(video_pipe, clips, name):
    as_path = video_pipe.generate([clips / name, "and now?"], max_new_tokens=4)
    as_bytes = video_pipe.generate([(clips / name).read_bytes(), "and now?"], max_new_tokens=4)
    assert as_bytes.tokens == as_path.tokens
    assert as_bytes.usage["prompt_tokens"] == as_path.usage["prompt_tokens"]


def test_a_video_encoder_attached_by_hand_is_saved_and_loaded(clips, tmp_path):
    pipe = build_micro_pipeline()
    image = pipe.model.encoders["image"]
    pipe.model.encoders["video"] = VideoEncoder(image, fps=8.0, frame_budget=1)  # shared ViT
    clip = pipe.model.encoders["video"].preprocess(clips / "tiny.mp4")
    pipe.save_pretrained(tmp_path)
    assert "video" not in pipe.model.config.encoders  # saving leaves the config in memory alone
    loaded = omni.load(tmp_path)
    with torch.no_grad():
        expected = pipe.model.encoders["video"]([clip])[0]
        assert torch.equal(loaded.model.encoders["video"]([clip])[0], expected)
        assert torch.equal(
            loaded.model.encoders["image"]([clip.frames[0]])[0], image([clip.frames[0]])[0]
        )
    result = loaded.generate([clips / "tiny.mp4", "what is it?"], max_new_tokens=3)
    assert 1 <= len(result.tokens) <= 3


def test_bad_video_inputs_to_the_pipeline_are_value_errors_naming_them(video_pipe, tmp_path):
    with pytest.raises(ValueError, match="no such file: .*gone.mp4"):
        video_pipe.generate([omni.Video(str(tmp_path / "gone.mp4")), "what?"])
    broken = tmp_path / "broken.webm"
    broken.write_bytes(b"\x1a\x45\xdf\xa3" + b"not a real matroska stream")
    with pytest.raises(ValueError, match=f"cannot decode video {broken}"):
        video_pipe.generate([str(broken), "what?"])
    with pytest.raises(ValueError, match="cannot decode video the video bytes"):
        video_pipe.generate([broken.read_bytes(), "what?"])
