"""Scenes of the toy world: one to three flat-coloured shapes on a lightly textured background.

A scene is plain data (``Scene`` of ``SceneObject``); ``sample_scene`` draws one from a numpy
``Generator`` within the ranges of a ``DrawingStyle`` and ``render_scene`` turns it into
pixels. In the classic style shapes are upright and drawn without anti-aliasing, so every
object pixel carries its palette colour (plus light noise); a ``DrawingLook``
(``training.toyworld.looks``) varies side, anti-aliasing, outline and background. Objects never
overlap, so the image checker can read a scene back from pixels alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from training.toyworld.styles import DrawingStyle

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (30, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (235, 205, 30),
    "purple": (135, 50, 175),
    "orange": (245, 130, 20),
}
SIZES: tuple[str, ...] = ("small", "big")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")

# Anchor of each position as a fraction of the image side (x, y); objects jitter around it.
POSITION_ANCHORS: dict[str, tuple[float, float]] = {
    "left": (0.18, 0.5),
    "right": (0.82, 0.5),
    "top": (0.5, 0.18),
    "bottom": (0.5, 0.82),
    "centre": (0.5, 0.5),
}
# Half the side of the object's bounding box, as a fraction of the image side: (low, high).
SIZE_RADII: dict[str, tuple[float, float]] = {"small": (0.06, 0.075), "big": (0.11, 0.125)}
BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (244, 244, 244),
    (236, 236, 230),
    (246, 240, 226),
    (228, 236, 242),
)
NOISE_AMPLITUDE = 5
MIN_IMAGE_SIZE = 32

# (colour, shape) pairs that never occur in train/validation/test: the `novel` split.
NOVEL_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("red", "star"), ("green", "circle"), ("blue", "triangle"), ("yellow", "square")}
)


class ObjectAttrs(NamedTuple):
    """The attribute set of one object; a field is None where a reader could not tell."""

    shape: str | None
    colour: str | None
    size: str | None
    position: str | None


@dataclass(frozen=True)
class SceneObject:
    """One object: its attributes plus where exactly it is drawn (fractions of the side)."""

    shape: str
    colour: str
    size: str
    position: str
    x: float
    y: float
    radius: float

    @property
    def attrs(self) -> ObjectAttrs:
        return ObjectAttrs(self.shape, self.colour, self.size, self.position)


@dataclass(frozen=True)
class Scene:
    """One or two objects on a background; ``texture_seed`` makes the background noise."""

    objects: tuple[SceneObject, ...]
    background: tuple[int, int, int]
    texture_seed: int

    @classmethod
    def from_attributes(cls, objects: list[ObjectAttrs | dict[str, str]]) -> Scene:
        """A scene with these objects drawn at their position anchors, mid-range size and a
        plain background: rebuilds a scene from a manifest's ``meta["attributes"]``."""
        built = []
        for item in objects:
            attrs = ObjectAttrs(**item) if isinstance(item, dict) else ObjectAttrs(*item)
            if attrs.shape not in SHAPES or attrs.colour not in COLOURS:
                raise ValueError(f"unknown shape or colour in {attrs}")
            if attrs.size not in SIZES or attrs.position not in POSITIONS:
                raise ValueError(f"unknown size or position in {attrs}")
            x, y = POSITION_ANCHORS[attrs.position]
            radius = sum(SIZE_RADII[attrs.size]) / 2
            built.append(SceneObject(*attrs, x, y, radius))
        return cls(tuple(built), BACKGROUNDS[0], 0)

    @property
    def attributes(self) -> set[ObjectAttrs]:
        return {obj.attrs for obj in self.objects}

    def to_meta(self) -> list[dict[str, str]]:
        """Attributes as JSON-ready dicts, in drawing order."""
        return [obj.attrs._asdict() for obj in self.objects]

    @property
    def is_novel(self) -> bool:
        return any((obj.colour, obj.shape) in NOVEL_PAIRS for obj in self.objects)


def objects_overlap(a: SceneObject, b: SceneObject) -> bool:
    """Whether the bounding boxes, plus a margin of 0.02 of the side, meet (then the two
    objects could touch and the checker would see one component)."""
    margin = 0.02
    return (
        abs(a.x - b.x) < a.radius + b.radius + margin
        and abs(a.y - b.y) < a.radius + b.radius + margin
    )


def keep_inside(centre: float, radius: float) -> float:
    """The centre moved, if needed, to keep the object clear of the border (whose median
    colour the checker takes for the background)."""
    margin = radius + 0.03
    return min(max(centre, margin), 1 - margin)


def _sample_object(
    rng: np.random.Generator, position: str, novel: bool | None, drawing: DrawingStyle
) -> SceneObject:
    while True:
        colour = str(rng.choice(list(COLOURS)))
        shape = str(rng.choice(SHAPES))
        if novel is None or ((colour, shape) in NOVEL_PAIRS) == novel:
            break
    size = str(rng.choice(SIZES))
    low, high = drawing.small_radius if size == "small" else drawing.big_radius
    ax, ay = POSITION_ANCHORS[position]
    jitter = drawing.position_jitter
    jx, jy = rng.uniform(-jitter, jitter, size=2)
    radius = float(rng.uniform(low, high))
    x, y = keep_inside(ax + float(jx), radius), keep_inside(ay + float(jy), radius)
    return SceneObject(shape, colour, size, position, x, y, radius)


def _sample_background(rng: np.random.Generator, drawing: DrawingStyle) -> tuple[int, int, int]:
    if drawing.background_levels is None:
        return BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    low, high = drawing.background_levels
    return tuple(int(v) for v in rng.integers(low, high + 1, size=3))


def nearest_classic_background(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """The classic background closest to ``colour`` (the classic rendering of a scene drawn
    on another background, as a function of it)."""
    return min(BACKGROUNDS, key=lambda b: sum((x - y) ** 2 for x, y in zip(b, colour)))


def sample_scene(
    rng: np.random.Generator,
    n_objects: int | None = None,
    novel: bool = False,
    drawing: DrawingStyle = DrawingStyle(),
) -> Scene:
    """Draw a scene within the ranges of ``drawing`` (the classic style by default).
    ``novel=False`` never uses a held-out (colour, shape) pair; ``novel=True`` makes the first
    object use one (the others are free), so the scene is held out as a whole."""
    if n_objects is None:
        n_objects = int(rng.integers(1, drawing.max_objects + 1))
    if not 1 <= n_objects <= drawing.max_objects:
        raise ValueError(f"a scene has 1 to {drawing.max_objects} objects, got {n_objects}")
    background = _sample_background(rng, drawing)
    while True:
        positions = [str(p) for p in rng.choice(POSITIONS, size=n_objects, replace=False)]
        objects = [_sample_object(rng, positions[0], True if novel else False, drawing)]
        for position in positions[1:]:
            objects.append(_sample_object(rng, position, None if novel else False, drawing))
        pairs = [(a, b) for i, a in enumerate(objects) for b in objects[i + 1 :]]
        if not any(objects_overlap(a, b) for a, b in pairs):
            break
    return Scene(tuple(objects), background, int(rng.integers(2**31)))


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "star":
        # Five outer points on radius r, inner points on 0.45 r; shifted down so that the
        # bounding box (top point at -r, lower points at +0.81 r) is centred on (cx, cy).
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        dy = r * (1 - np.cos(np.pi / 5)) / 2
        return [
            (cx + rad * np.cos(a), cy + dy + rad * np.sin(a))
            for a, rad in zip(angles, radii, strict=True)
        ]
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def draw_objects(
    draw: ImageDraw.ImageDraw,
    scene: Scene,
    size: int,
    fills: list,
    outlines: list | None = None,
    width: int = 0,
) -> None:
    """Draw the scene's shapes on a ``size``-pixel canvas, each in its fill (and outline)."""
    outlines = outlines or [None] * len(fills)
    for obj, fill, outline in zip(scene.objects, fills, outlines, strict=True):
        cx, cy, r = obj.x * size, obj.y * size, obj.radius * size
        if obj.shape == "circle":
            box = (cx - r, cy - r, cx + r, cy + r)
            draw.ellipse(box, fill=fill, outline=outline, width=width)
        else:
            points = _shape_polygon(obj.shape, cx, cy, r)
            draw.polygon(points, fill=fill, outline=outline, width=width)


def render_scene(scene: Scene, size: int = 64) -> Image.Image:
    """Render a scene to an RGB image of ``size`` x ``size`` pixels (deterministic)."""
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE}, got {size}")
    image = Image.new("RGB", (size, size), scene.background)
    draw_objects(ImageDraw.Draw(image), scene, size, [COLOURS[o.colour] for o in scene.objects])
    noise = np.random.default_rng(scene.texture_seed).integers(
        -NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=(size, size, 1)
    )
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


# Per-patch label maps of ``patch_labels``: task name -> number of classes (0 = background).
PATCH_TASKS: dict[str, int] = {
    "shape": 1 + len(SHAPES),
    "colour": 1 + len(COLOURS),
    "size": 1 + len(SIZES),
    "position": 1 + len(POSITIONS),
    "coverage": 5,
}


def patch_labels(scene: Scene, grid: int, size: int = 64) -> np.ndarray:
    """Dense labels of a scene on a ``grid x grid`` patch grid, ``[len(PATCH_TASKS), grid,
    grid]`` int64: for each patch, the shape, colour, size and position class of the object
    drawn in it (0 where none), and how much of the patch it covers (0, then quarters 1..4).

    This is the supervision that pretrains the micro ViT (``encoders.vision_pretrain``) in
    place of CLIP weights: its patch features then name what is drawn where."""
    if size % grid:
        raise ValueError(f"image size {size} is not a multiple of the patch grid {grid}")
    index = Image.new("L", (size, size), 0)
    draw_objects(ImageDraw.Draw(index), scene, size, list(range(1, len(scene.objects) + 1)))
    patch = size // grid
    cells = np.asarray(index).reshape(grid, patch, grid, patch).transpose(0, 2, 1, 3)
    labels = np.zeros((len(PATCH_TASKS), grid, grid), dtype=np.int64)
    for number, obj in enumerate(scene.objects, 1):
        coverage = (cells == number).mean(axis=(-2, -1))
        hit = coverage > 0
        classes = (
            SHAPES.index(obj.shape),
            list(COLOURS).index(obj.colour),
            SIZES.index(obj.size),
            POSITIONS.index(obj.position),
        )
        for task, value in enumerate(classes):
            labels[task][hit] = 1 + value
        labels[-1][hit] = np.minimum(4, 1 + (coverage[hit] * 4).astype(np.int64))
    return labels
