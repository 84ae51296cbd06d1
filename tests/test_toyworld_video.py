"""Video tasks: a clip of one object moving to a free position, its caption and questions,
written as a tiny MP4 that the video encoder's PyAV reader decodes frame by frame."""

import json

import numpy as np
import pytest

from encoders.video import sample_video_file
from training.evaluate import check_image
from training.toyworld import generate
from training.toyworld.motion import (
    CLIP_FRAMES,
    ask_motion,
    describe_motion,
    motion_frames,
    sample_motion,
)
from training.toyworld.scenes import Scene, sample_scene


def test_mover_ends_at_a_free_position_and_the_others_stay():
    rng = np.random.default_rng(0)
    for _ in range(50):
        scene = sample_scene(rng)
        motion = sample_motion(rng, scene)
        frames = motion_frames(motion)
        assert len(frames) == CLIP_FRAMES and frames[0] == scene
        end = frames[-1].objects
        assert end[motion.mover].position == motion.target
        assert motion.target not in {o.position for o in scene.objects}
        assert [o for i, o in enumerate(end) if i != motion.mover] == [
            o for i, o in enumerate(scene.objects) if i != motion.mover
        ]


def test_motion_is_said_in_english_and_korean():
    scene = Scene.from_attributes(
        [{"shape": "circle", "colour": "red", "size": "big", "position": "left"}]
    )
    motion = sample_motion(np.random.default_rng(1), scene)
    motion = type(motion)(scene, 0, "centre")
    assert describe_motion(motion, "en") == "the big red circle moves from the left to the centre"
    assert describe_motion(motion, "ko") == "큰 빨간 원이 왼쪽에서 가운데로 움직여요"
    assert ask_motion(motion, "what", "en") == ("what moves?", "the big red circle")
    assert ask_motion(motion, "where", "ko") == (
        "큰 빨간 원은 어디로 움직여요?",
        "가운데로 움직여요",
    )
    with pytest.raises(ValueError, match="unknown motion question"):
        ask_motion(motion, "why", "en")


@pytest.mark.parametrize("style", ["classic", "varied"])
def test_video_samples_decode_to_their_start_and_end_scenes(tmp_path, style):
    manifest = generate(
        tmp_path, 8, seed=4, tasks=["video_caption", "video_qa"], style=style, progress=False
    )
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    read = []
    for record in records:
        clip = record["turns"][1]["segments"][0]
        assert clip["type"] == "video" and clip["path"].endswith(".mp4")
        frames, times = sample_video_file(tmp_path / clip["path"], fps=4)
        assert len(frames) == CLIP_FRAMES and times[1] == pytest.approx(0.25)
        start = {tuple(a.values()) for a in record["meta"]["attributes"]}
        end = {tuple(a.values()) for a in record["meta"]["end_attributes"]}
        read += [set(check_image(frames[0])) == start, set(check_image(frames[-1])) == end]
        motion = record["meta"]["motion"]
        assert record["meta"]["end_attributes"][motion["object"]]["position"] == motion["to"]
    assert np.mean(read) >= 0.8  # H.264 at crf 23 on tiny frames blurs a few small objects
    again = generate(
        tmp_path / "again",
        8,
        seed=4,
        tasks=["video_caption", "video_qa"],
        style=style,
        progress=False,
    )
    assert again.read_bytes() == manifest.read_bytes()
    assert (tmp_path / "again/media/video_qa-000001.mp4").read_bytes() == (
        tmp_path / "media/video_qa-000001.mp4"
    ).read_bytes()
