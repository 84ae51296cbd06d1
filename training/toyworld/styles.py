"""How the toy world draws and speaks: named styles whose factors are drawn per sample.

A ``WorldStyle`` is plain data: the ranges of every drawing factor (``DrawingStyle``) and
speaking factor (``SpeakingStyle``), and the share of samples in each split. Each sample
draws its own factors from its seeded generator, so the ranges (written to ``world.json``)
are the whole description of a world.

- ``classic``: the original world (one drawing style, 4 voices per language); kept so that
  shipped components and assets are reproduced byte for byte.
- ``varied``: continuous radii, position jitter, 1-3 objects, anti-aliasing and outlines,
  background colour/gradient/noise, JPEG re-encoding, sides 48-96 px; voices from espeak-ng
  variants with pitch, speed, gain, noise, reverb and silence drawn per clip. Its ``unseen``
  split is drawn in ``UNSEEN`` (variants, pitch/speed ranges and drawing settings disjoint
  from the training ranges), which no component trains on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from training.toyworld.speech import GENERATION_VOICES, Voice

# The variant files of espeak-ng 1.51 (`espeak-ng --voices=variant`), written out so that the
# world does not depend on which espeak-ng build happens to be installed.
ESPEAK_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "Denis", "Diogo", "ed", "edward",
    "edward2", "Gene", "Gene2", "gustave", "Henrique", "Hugo", "iven", "iven2", "iven3",
    "iven4", "Jacky", "john", "kaukovalta", "Lee", "linda", "marcelo", "Marco", "Mario", "max",
    "Michael", "michel", "miguel", "Mike", "Mr", "Nguyen", "norbert", "pablo", "paul", "pedro",
    "quincy", "RicishayMax", "RicishayMax2", "RicishayMax3", "rob", "robert", "robosoft",
    "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6", "robosoft7", "robosoft8",
    "sandro", "shelby", "steph", "steph2", "steph3", "Storm", "travis", "Tweaky", "UniRobot",
    "victor", "zac", "anika", "anikaRobot", "grandpa", "grandma", "announcer", "Demonic",
    "croak", "fast", "whisper", "whisperf",
)  # fmt: skip
# Held out for the `unseen` split: no component ever hears these variants.
UNSEEN_VARIANTS: tuple[str, ...] = (
    "m4", "f3", "klatt3", "Alicia", "Andy", "belinda", "Gene2", "grandma", "iven2", "Jacky",
    "michel", "Mr", "quincy", "robosoft3", "steph2", "Storm", "travis", "Tweaky", "victor",
    "anika",
)  # fmt: skip
TRAIN_VARIANTS: tuple[str, ...] = tuple(v for v in ESPEAK_VARIANTS if v not in UNSEEN_VARIANTS)
SPLITS: tuple[str, ...] = ("train", "validation", "test", "novel", "unseen")

Range = tuple[float, float]


@dataclass(frozen=True)
class DrawingStyle:
    """Ranges of the drawing factors. ``sides=None`` draws at the side ``generate`` is given;
    ``background_levels=None`` uses the classic palette of four light backgrounds."""

    looks: bool = False  # draw a DrawingLook per image (False: the classic rendering)
    max_objects: int = 2
    small_radius: Range = (0.06, 0.075)  # half the box side, as a fraction of the side
    big_radius: Range = (0.11, 0.125)
    position_jitter: float = 0.02
    sides: tuple[int, int] | None = None
    antialias_share: float = 0.0
    outline_share: float = 0.0
    background_levels: tuple[int, int] | None = None
    gradient: float = 0.0  # largest change of a channel across the image, in levels
    noise: tuple[int, int] = (5, 5)  # amplitude of the texture noise, in levels
    jpeg_share: float = 0.0
    jpeg_quality: tuple[int, int] = (60, 95)


@dataclass(frozen=True)
class SpeakingStyle:
    """Ranges of the speaking factors. ``voices`` set means a fixed list (the classic world);
    otherwise a voice is a variant with a pitch and speed drawn from the listed intervals."""

    voices: tuple[tuple[str, int, int], ...] | None = None
    variants: tuple[str, ...] = TRAIN_VARIANTS
    pitch: tuple[tuple[int, int], ...] = ((20, 90),)
    speed: tuple[tuple[int, int], ...] = ((120, 200),)
    gain_db: float = 0.0
    snr_db: Range | None = None  # additive noise, None for clean
    reverb_share: float = 0.0
    silence_s: Range = (0.0, 0.0)  # leading and trailing silence, each drawn

    def fixed_voices(self, lang: str) -> list[Voice]:
        return [Voice(lang, variant, pitch, speed) for variant, pitch, speed in self.voices]


@dataclass(frozen=True)
class WorldStyle:
    """A named world: how the training splits draw and speak, and how `unseen` does."""

    name: str
    drawing: DrawingStyle
    speaking: SpeakingStyle
    split_shares: dict[str, float]
    unseen_drawing: DrawingStyle | None = None
    unseen_speaking: SpeakingStyle | None = None

    def for_split(self, split: str) -> tuple[DrawingStyle, SpeakingStyle]:
        """The drawing and speaking ranges that samples of ``split`` are drawn from."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if split not in self.split_shares:
            raise ValueError(f"style {self.name!r} has no {split!r} split; it has "
                             f"{tuple(self.split_shares)}")  # fmt: skip
        if split == "unseen":
            return self.unseen_drawing, self.unseen_speaking
        return self.drawing, self.speaking

    def to_json(self) -> dict[str, Any]:
        """The ranges, as written to ``world.json``."""
        return dataclasses.asdict(self)


CLASSIC = WorldStyle(
    "classic",
    DrawingStyle(),
    SpeakingStyle(voices=tuple((v.variant, v.pitch, v.speed) for v in GENERATION_VOICES["en"])),
    {"train": 0.8, "validation": 0.05, "test": 0.05, "novel": 0.1},
)
VARIED_DRAWING = DrawingStyle(
    looks=True,
    max_objects=3,
    small_radius=(0.075, 0.085),
    big_radius=(0.125, 0.145),
    position_jitter=0.06,
    sides=(48, 96),
    antialias_share=0.5,
    outline_share=0.3,
    background_levels=(200, 250),
    gradient=24.0,
    noise=(0, 8),
    jpeg_share=0.5,
    jpeg_quality=(60, 95),
)
VARIED_SPEAKING = SpeakingStyle(
    variants=TRAIN_VARIANTS,
    pitch=((20, 90),),
    speed=((120, 200),),
    gain_db=6.0,
    snr_db=(15.0, 40.0),
    reverb_share=0.3,
    silence_s=(0.0, 0.4),
)
# Disjoint from the training ranges: other sides, only outlined anti-aliased shapes on
# darker, steeper backgrounds; other variants, extreme pitches and speeds.
UNSEEN_DRAWING = dataclasses.replace(
    VARIED_DRAWING,
    sides=(100, 128),
    antialias_share=1.0,
    outline_share=1.0,
    background_levels=(170, 199),
    gradient=40.0,
    noise=(9, 12),
    jpeg_share=1.0,
    jpeg_quality=(40, 59),
)
UNSEEN_SPEAKING = dataclasses.replace(
    VARIED_SPEAKING,
    variants=UNSEEN_VARIANTS,
    pitch=((5, 19), (91, 99)),
    speed=((100, 119), (201, 230)),
)
VARIED = WorldStyle(
    "varied",
    VARIED_DRAWING,
    VARIED_SPEAKING,
    {"train": 0.75, "validation": 0.05, "test": 0.05, "novel": 0.1, "unseen": 0.05},
    UNSEEN_DRAWING,
    UNSEEN_SPEAKING,
)
STYLES: dict[str, WorldStyle] = {"classic": CLASSIC, "varied": VARIED}


def world_style(name: str, **options: Any) -> WorldStyle:
    """The named style, with ``options`` replacing fields of its training drawing or speaking
    ranges (e.g. ``jpeg_share=0.0``). Unknown names and options are a ValueError."""
    if name not in STYLES:
        raise ValueError(f"unknown world style {name!r}; expected one of {tuple(STYLES)}")
    style = STYLES[name]
    drawing_fields = {f.name for f in dataclasses.fields(DrawingStyle)}
    speaking_fields = {f.name for f in dataclasses.fields(SpeakingStyle)}
    unknown = sorted(set(options) - drawing_fields - speaking_fields)
    if unknown:
        raise ValueError(
            f"unknown style options {unknown}; drawing options are {sorted(drawing_fields)}, "
            f"speaking options are {sorted(speaking_fields)}"
        )
    drawing = {k: v for k, v in options.items() if k in drawing_fields}
    speaking = {k: v for k, v in options.items() if k in speaking_fields}
    return dataclasses.replace(
        style,
        drawing=dataclasses.replace(style.drawing, **drawing),
        speaking=dataclasses.replace(style.speaking, **speaking),
    )
