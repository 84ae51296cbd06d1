"""How one image of the varied world looks: side, anti-aliasing, outline, background, JPEG.

A ``DrawingLook`` is drawn per sample from a ``DrawingStyle`` (``sample_look``) and applied by
``render_look``; ``encode_image`` writes the PNG or JPEG bytes the manifest points at. The
classic world draws no look and renders with ``scenes.render_scene``.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from training.toyworld.scenes import (
    COLOURS,
    MIN_IMAGE_SIZE,
    Scene,
    draw_objects,
    nearest_classic_background,
    render_scene,
    sample_scene,
)
from training.toyworld.styles import DrawingStyle, world_style

SUPERSAMPLE = 4  # anti-aliased shapes are drawn this many times larger, then reduced
OUTLINE_SHADE = 0.6  # an outline is the fill colour darkened to this share (same hue)


@dataclass(frozen=True)
class DrawingLook:
    """The drawing factors of one image (``jpeg_quality`` None: written as PNG)."""

    side: int
    antialias: bool
    outline: int  # outline width in pixels, 0 for none
    gradient: float  # change of brightness across the image, in levels
    gradient_angle: float  # direction of the gradient, radians
    noise: int
    jpeg_quality: int | None

    def to_meta(self) -> dict:
        return {
            "side": self.side,
            "antialias": self.antialias,
            "outline": self.outline,
            "gradient": round(self.gradient, 2),
            "noise": self.noise,
            "jpeg_quality": self.jpeg_quality,
        }


def sample_look(rng: np.random.Generator, drawing: DrawingStyle, side: int) -> DrawingLook:
    """Draw the look of one image; ``side`` is used where the style fixes no range of sides."""
    if drawing.sides is not None:
        side = int(rng.integers(drawing.sides[0], drawing.sides[1] + 1))
    antialias = bool(rng.random() < drawing.antialias_share)
    outline = max(1, round(side / 48)) if rng.random() < drawing.outline_share else 0
    gradient = float(rng.uniform(0, drawing.gradient))
    angle = float(rng.uniform(0, 2 * np.pi))
    noise = int(rng.integers(drawing.noise[0], drawing.noise[1] + 1))
    quality = None
    if rng.random() < drawing.jpeg_share:
        quality = int(rng.integers(drawing.jpeg_quality[0], drawing.jpeg_quality[1] + 1))
    return DrawingLook(side, antialias, outline, gradient, angle, noise, quality)


def _background(scene: Scene, look: DrawingLook) -> np.ndarray:
    ramp = np.linspace(-0.5, 0.5, look.side)
    along = (
        np.cos(look.gradient_angle) * ramp[None, :] + np.sin(look.gradient_angle) * ramp[:, None]
    )
    shift = look.gradient * along / np.sqrt(0.5)  # corner to corner spans `gradient` levels
    return np.asarray(scene.background, dtype=np.float64) + shift[..., None]


def _object_layer(scene: Scene, look: DrawingLook) -> np.ndarray:
    """The shapes as RGBA floats: drawn supersampled and reduced, so both looks have the exact
    geometry; without anti-aliasing the coverage is rounded to 0 or 1 (hard edges)."""
    canvas = look.side * SUPERSAMPLE
    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    fills = [COLOURS[o.colour] + (255,) for o in scene.objects]
    outlines = [tuple(round(OUTLINE_SHADE * c) for c in fill[:3]) + (255,) for fill in fills]
    draw = ImageDraw.Draw(layer)
    draw_objects(draw, scene, canvas, fills, outlines, look.outline * SUPERSAMPLE)
    reduced = layer.resize((look.side, look.side), Image.Resampling.BOX)
    rgba = np.asarray(reduced, dtype=np.float64)
    alpha = rgba[..., 3:] / 255  # Pillow resizes RGBA premultiplied: colours stay unmixed
    if not look.antialias:
        alpha = (alpha >= 0.5).astype(np.float64)
    return np.concatenate([rgba[..., :3], alpha], axis=-1)


def render_look(scene: Scene, look: DrawingLook) -> Image.Image:
    """Render a scene in this look to an RGB image (deterministic; before any JPEG)."""
    if look.side < MIN_IMAGE_SIZE:
        raise ValueError(f"image side must be at least {MIN_IMAGE_SIZE}, got {look.side}")
    layer = _object_layer(scene, look)
    alpha = layer[..., 3:]
    pixels = alpha * layer[..., :3] + (1 - alpha) * _background(scene, look)
    noise = np.random.default_rng(scene.texture_seed).integers(
        -look.noise, look.noise + 1, size=(look.side, look.side, 1)
    )
    return Image.fromarray(np.clip(np.rint(pixels) + noise, 0, 255).astype(np.uint8), "RGB")


def encode_image(image: Image.Image, look: DrawingLook | None) -> tuple[bytes, str]:
    """The file bytes and extension: JPEG at the look's quality, else PNG."""
    buffer = io.BytesIO()
    if look is not None and look.jpeg_quality is not None:
        image.save(buffer, format="JPEG", quality=look.jpeg_quality)
        return buffer.getvalue(), "jpg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), "png"


def jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    """The image as a JPEG reader sees it after encoding at ``quality``."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def as_written(
    rng: np.random.Generator, scene: Scene, drawing: DrawingStyle, side: int
) -> Image.Image:
    """``scene`` as the world writes it under ``drawing``: in a sampled look, read back through
    JPEG where the look says so; the classic rendering at ``side`` for a style without looks."""
    if not drawing.looks:
        return render_scene(scene, side)
    look = sample_look(rng, drawing, side)
    image = render_look(scene, look)
    return image if look.jpeg_quality is None else jpeg_roundtrip(image, look.jpeg_quality)


def classic_rendering(scene: Scene, side: int) -> Image.Image:
    """``scene``'s geometry in the classic rendering, on the nearest classic background."""
    return render_scene(
        dataclasses.replace(scene, background=nearest_classic_background(scene.background)), side
    )


def styled_pairs(
    style: str, side: int, classic_share: float = 0.0, classic_world_share: float = 0.0
):
    """(n, rng) -> (n scenes of ``style``'s train ranges as written, the same scenes in the
    classic rendering at ``side`` pixels). In ``classic_share`` of the pairs the first image
    is the classic rendering too; in ``classic_world_share`` of them the scene is one of the
    classic world's own (its discrete sizes and fixed positions), classic on both sides. Never
    an ``unseen`` range, never a held-out novel pair."""
    drawing, _ = world_style(style).for_split("train")
    if not drawing.looks:
        raise ValueError(f"style {style!r} draws only the classic rendering: nothing to learn")
    for name, share in (
        ("classic share", classic_share),
        ("classic world share", classic_world_share),
    ):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must lie in [0, 1), got {share}")

    def make_pairs(n: int, rng: np.random.Generator) -> tuple[list, list]:
        styled, canonical = [], []
        for _ in range(n):
            if classic_world_share > 0 and rng.random() < classic_world_share:
                canonical.append(render_scene(sample_scene(rng), side))
                styled.append(canonical[-1])
                continue
            scene = sample_scene(rng, drawing=drawing)
            image = as_written(rng, scene, drawing, side)
            canonical.append(classic_rendering(scene, side))
            keep_classic = classic_share > 0 and rng.random() < classic_share
            styled.append(canonical[-1] if keep_classic else image)
        return styled, canonical

    return make_pairs
