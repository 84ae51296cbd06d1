"""Video understanding path: frames sampled at a fixed rate (PyAV for files), capped, and encoded
one by one by the vision encoder with a smaller per-frame token budget.

The processor writes each frame's timestamp (``VideoClip.timestamps``) as text before that
frame's ``frame_budget`` slots, so the model sees when each frame happened.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.base import ContinuousEncoder
from encoders.vision import VisionEncoder


@dataclass
class VideoClip:
    """Preprocessed video: normalised frames ``[F, 3, S, S]`` and their times in seconds."""

    frames: torch.Tensor
    timestamps: list[float]


def sample_video_file(source: str | Path | bytes, fps: float) -> tuple[list[Any], list[float]]:
    """Decode a video file (its path or its bytes) with PyAV, keeping the first frame at or
    after each multiple of 1/fps."""
    import av

    if isinstance(source, (bytes, bytearray)):
        name, data = "the video bytes", io.BytesIO(source)
    else:
        if not Path(source).is_file():
            raise ValueError(f"video file not found: {source}")
        name, data = str(source), str(source)
    interval, next_time = 1.0 / fps, 0.0
    images, timestamps = [], []
    try:
        with av.open(data) as container:
            if not container.streams.video:
                raise ValueError(f"{name} has no video stream")
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else index / float(stream.average_rate)
                if time + 1e-6 < next_time:
                    continue
                images.append(frame.to_image())
                timestamps.append(round(float(time), 6))
                while next_time <= time + 1e-6:
                    next_time += interval
    except av.FFmpegError as error:
        raise ValueError(f"cannot decode video {name}: {error}") from error
    if not images:
        raise ValueError(f"{name} has no decodable video frames")
    return images, timestamps


class VideoEncoder(ContinuousEncoder):
    """Frame sampler + vision encoder: ``frames * frame_budget`` slots per clip.

    Args:
        vision: a ``VisionEncoder`` to share (e.g. the image path's) or its config dict.
        fps: frames sampled per second of video.
        max_frames: cap; longer clips keep ``max_frames`` frames spread evenly over the clip.
        frame_budget: slots per frame (a square no larger than the vision encoder allows).
        out_dim: output width (the backbone's hidden size); it sets the vision encoder's
            ``out_dim`` when built from a config, and must match a shared encoder's.
    """

    modality = "video"
    kind = "video"

    def __init__(
        self,
        vision: VisionEncoder | dict[str, Any] | None = None,
        fps: float = 1.0,
        max_frames: int = 16,
        frame_budget: int = 4,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        if fps <= 0 or max_frames < 1:
            raise ValueError(f"fps must be > 0 and max_frames >= 1, got {fps} and {max_frames}")
        if not isinstance(vision, VisionEncoder):
            options = {k: v for k, v in (vision or {}).items() if k != "type"}
            if out_dim is not None:
                options["out_dim"] = out_dim
            vision = VisionEncoder(**options)
        elif out_dim is not None and vision.out_dim != out_dim:
            raise ValueError(
                f"the shared vision encoder gives {vision.out_dim}-wide embeddings, but the "
                f"video encoder must give out_dim={out_dim}"
            )
        self.vision = vision
        self.out_dim = vision.out_dim
        self.fps, self.max_frames = float(fps), int(max_frames)
        self.frame_budget = vision.check_budget(frame_budget)

    def preprocess(self, signal: Any, timestamps: list[float] | None = None) -> VideoClip:
        """A video file (path or bytes), or a list of images (at ``timestamps``, default
        ``i / fps``)."""
        if isinstance(signal, (str, Path, bytes, bytearray)):
            images, timestamps = sample_video_file(signal, self.fps)
        elif isinstance(signal, (list, tuple)) and signal:
            images = list(signal)
            timestamps = (
                [i / self.fps for i in range(len(images))] if timestamps is None else timestamps
            )
            if len(timestamps) != len(images):
                raise ValueError(f"{len(images)} frames but {len(timestamps)} timestamps")
        else:
            raise ValueError("video must be a file path, file bytes or a non-empty list of images")
        if len(images) > self.max_frames:
            keep = np.linspace(0, len(images) - 1, self.max_frames).round().astype(int)
            images, timestamps = [images[i] for i in keep], [timestamps[i] for i in keep]
        frames = torch.stack([self.vision.preprocess(image) for image in images])
        return VideoClip(frames=frames, timestamps=[float(t) for t in timestamps])

    def num_tokens(self, item: VideoClip) -> int:
        return item.frames.shape[0] * self.frame_budget

    def forward(self, items: list[VideoClip]) -> list[torch.Tensor]:
        frames = torch.cat([item.frames for item in items])
        encoded = self.vision.encode(frames, budget=self.frame_budget)  # [sum F, budget, D]
        counts = [item.frames.shape[0] for item in items]
        return [clip.flatten(0, 1) for clip in encoded.split(counts)]

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "video",
            "vision": self.vision.to_config(),
            "fps": self.fps,
            "max_frames": self.max_frames,
            "frame_budget": self.frame_budget,
            "out_dim": self.out_dim,
        }
