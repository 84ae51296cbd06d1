"""Short clips of the toy world: one object of a scene moves to a free position.

A ``Motion`` is plain data (the scene at the start, which object moves, where to);
``motion_frames`` gives the scene of each frame, ``write_clip`` encodes rendered frames as a
tiny MP4 with PyAV, and ``describe_motion`` / ``ask_motion`` give the caption and the
question/answer pairs ("what moves?", "where does it move to?") in English and Korean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from training.toyworld.language import KO_POSITION, en_noun_phrase, josa, ko_noun_phrase
from training.toyworld.scenes import (
    POSITION_ANCHORS,
    POSITIONS,
    Scene,
    keep_inside,
    objects_overlap,
)

CLIP_FRAMES = 8
CLIP_FPS = 4  # 8 frames at 4 fps: a 2-second clip
MOTION_QUESTIONS: tuple[str, ...] = ("what", "where")
EN_PLACE = {"left": "the left", "right": "the right", "top": "the top",
            "bottom": "the bottom", "centre": "the centre"}  # fmt: skip


@dataclass(frozen=True)
class Motion:
    """``scene.objects[mover]`` moves from its position to ``target`` over the clip."""

    scene: Scene
    mover: int
    target: str

    @property
    def start(self) -> str:
        return self.scene.objects[self.mover].position

    def to_meta(self) -> dict:
        return {"object": self.mover, "from": self.start, "to": self.target}


def sample_motion(rng: np.random.Generator, scene: Scene) -> Motion | None:
    """Pick an object and a free position it can end at without touching the others (None
    where no object can move)."""
    for mover in rng.permutation(len(scene.objects)):
        mover = int(mover)
        taken = {o.position for o in scene.objects}
        for target in rng.permutation([p for p in POSITIONS if p not in taken]):
            end = _moved(scene, mover, str(target), 1.0).objects[mover]
            others = [o for i, o in enumerate(scene.objects) if i != mover]
            if not any(objects_overlap(end, other) for other in others):
                return Motion(scene, mover, str(target))
    return None


def _moved(scene: Scene, mover: int, target: str, t: float) -> Scene:
    obj = scene.objects[mover]
    tx, ty = POSITION_ANCHORS[target]
    end_x, end_y = keep_inside(tx, obj.radius), keep_inside(ty, obj.radius)
    x, y = obj.x + t * (end_x - obj.x), obj.y + t * (end_y - obj.y)
    position = obj.position if t < 1 else target
    objects = list(scene.objects)
    objects[mover] = dataclasses.replace(obj, x=x, y=y, position=position)
    return dataclasses.replace(scene, objects=tuple(objects))


def motion_frames(motion: Motion, frames: int = CLIP_FRAMES) -> list[Scene]:
    """The scene at each frame: the mover goes in a straight line, start to end."""
    return [
        _moved(motion.scene, motion.mover, motion.target, i / (frames - 1)) for i in range(frames)
    ]


def end_scene(motion: Motion) -> Scene:
    return _moved(motion.scene, motion.mover, motion.target, 1.0)


def write_clip(images: list[Image.Image], path: Path, fps: int = CLIP_FPS) -> None:
    """Encode frames as H.264 MP4 (yuv420p, so sides are rounded down to even) with PyAV."""
    import av

    side = images[0].width // 2 * 2
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "threads": "1"}  # same bytes
        for image in images:
            frame = av.VideoFrame.from_image(image.crop((0, 0, side, side)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def describe_motion(motion: Motion, lang: str) -> str:
    """ "the big red circle moves from the left to the right" / "큰 빨간 원이 왼쪽에서 오른쪽으로
    움직여요"."""
    obj = motion.scene.objects[motion.mover]
    if lang == "en":
        start, end = EN_PLACE[motion.start], EN_PLACE[motion.target]
        return f"the {en_noun_phrase(obj)} moves from {start} to {end}"
    subject = josa(ko_noun_phrase(obj), "이", "가")
    return f"{subject} {KO_POSITION[motion.start]}에서 {_ko_towards(motion.target)} 움직여요"


def ask_motion(motion: Motion, qtype: str, lang: str) -> tuple[str, str]:
    """ "what moves?" -> "the big red circle"; "where does the big red circle move to?" ->
    "to the right" (and the Korean)."""
    if qtype not in MOTION_QUESTIONS:
        raise ValueError(f"unknown motion question {qtype!r}; expected one of {MOTION_QUESTIONS}")
    obj = motion.scene.objects[motion.mover]
    if lang == "en":
        if qtype == "what":
            return "what moves?", f"the {en_noun_phrase(obj)}"
        return f"where does the {en_noun_phrase(obj)} move to?", f"to {EN_PLACE[motion.target]}"
    if qtype == "what":
        return "무엇이 움직여요?", josa(ko_noun_phrase(obj), "이에요", "예요")
    question = f"{josa(ko_noun_phrase(obj), '은', '는')} 어디로 움직여요?"
    return question, f"{_ko_towards(motion.target)} 움직여요"


def _ko_towards(position: str) -> str:
    return josa(KO_POSITION[position], "으로", "로")
