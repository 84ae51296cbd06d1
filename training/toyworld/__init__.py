"""The toy world: a synthetic bilingual (English/Korean) world of shapes, captions, questions
and speech, in which every Omni component can be trained from scratch and judged by checkers
that use no model (see ``training.evaluate``).

Public API::

    generate(out_dir, n, seed, size=64, tasks=TASKS, style="classic") -> Path
                                        # tasks may add VIDEO_TASKS (clips of a moving object)
    world_style("varied", **options) -> WorldStyle              # named ranges, see styles.py
    sample_scene(rng, n_objects=None, novel=False) -> Scene
    Scene.from_attributes(meta["attributes"]) -> Scene         # rebuild from a manifest
    render_scene(scene, size=64) -> PIL.Image
    describe(scene, lang, style=0) -> str                      # caption, "en" or "ko"
    ask(scene, qtype, lang, target=0) -> (question, answer)
    answer_candidates(qtype, lang) -> list[str]                # to judge spoken answers
    caption_candidates(scene, lang, style=0) -> list[str]      # to judge spoken captions
    parse_caption(text) -> set[ObjectAttrs]

Importing it loads numpy and PIL only; torch/torchaudio load when speech is rendered.
"""

from training.toyworld.language import (
    LANGS,
    QUESTION_TYPES,
    answer_candidates,
    ask,
    caption_candidates,
    describe,
    parse_caption,
)
from training.toyworld.scenes import (
    COLOURS,
    NOVEL_PAIRS,
    POSITIONS,
    SHAPES,
    SIZES,
    ObjectAttrs,
    Scene,
    SceneObject,
    render_scene,
    sample_scene,
)
from training.toyworld.speech import GENERATION_VOICES, REFERENCE_VOICES, SpeechRenderer, Voice
from training.toyworld.styles import SPLITS, STYLES, WorldStyle, world_style
from training.toyworld.tasks import TASKS, generate

__all__ = [
    "COLOURS",
    "GENERATION_VOICES",
    "LANGS",
    "NOVEL_PAIRS",
    "POSITIONS",
    "QUESTION_TYPES",
    "REFERENCE_VOICES",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "STYLES",
    "TASKS",
    "ObjectAttrs",
    "Scene",
    "SceneObject",
    "SpeechRenderer",
    "Voice",
    "WorldStyle",
    "answer_candidates",
    "ask",
    "caption_candidates",
    "describe",
    "generate",
    "parse_caption",
    "render_scene",
    "sample_scene",
    "world_style",
]
