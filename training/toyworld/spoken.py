"""Spoken clips of a world split, for what learns from speech outside the manifest (the
vocoder's ``--world`` data) and for the benchmarks that judge speech components.

Each clip is a world sentence (a caption, or a question about a scene) in a voice drawn from
the split's speaking ranges, with the split's effects (gain, noise, reverb, silence); the clean
rendering is kept beside it, padded with the same silences, so the two line up sample for
sample (the reverb keeps its direct path, so nothing shifts).
"""

from __future__ import annotations

import numpy as np
import torch

from training.toyworld.language import QUESTION_TYPES, ask, describe
from training.toyworld.scenes import sample_scene
from training.toyworld.speech import SAMPLE_RATE, SpeechRenderer
from training.toyworld.styles import DrawingStyle, world_style
from training.toyworld.voices import apply_effects, sample_effects, sample_voice


def world_sentence(rng: np.random.Generator, drawing: DrawingStyle, lang: str) -> str:
    """A caption or a question about a scene drawn within ``drawing``, in ``lang``."""
    scene = sample_scene(rng, drawing=drawing)
    if rng.random() < 0.5:
        return describe(scene, lang, int(rng.integers(2)))
    qtype = QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
    return ask(scene, qtype, lang, int(rng.integers(len(scene.objects))))[int(rng.integers(2))]


def spoken_clips(
    split: str,
    voices: int,
    per_voice: int,
    seed: int,
    renderer: SpeechRenderer,
    style: str = "varied",
) -> list[dict]:
    """Clips of the split: ``voices`` voices (languages alternating) from its speaking ranges,
    each saying ``per_voice`` sentences. Each clip is a dict of ``lang``, ``voice`` (its id),
    ``text``, ``wave`` (with the effects) and ``clean`` (float32 tensors at ``SAMPLE_RATE``)."""
    drawing, speaking = world_style(style).for_split(split)
    rng = np.random.default_rng([seed, 7, len(split)])
    clips = []
    for v in range(voices):
        lang = ("en", "ko")[v % 2]
        voice = sample_voice(rng, lang, speaking)
        for _ in range(per_voice):
            text = world_sentence(rng, drawing, lang)
            clean = renderer.render(text, voice)
            effects = sample_effects(rng, speaking)
            wave = apply_effects(clean, effects)
            if effects is not None:
                lead, trail = (int(s * SAMPLE_RATE) for s in (effects.lead_s, effects.trail_s))
                clean = np.pad(clean, (lead, trail))
            clips.append(
                {
                    "lang": lang,
                    "voice": voice.id,
                    "text": text,
                    "wave": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
                    "clean": torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)),
                }
            )
    return clips
