"""``omni train speech-invariance``: make a trained speech-unit tokenizer hear the wider world's
voices, rooms and noise as it hears the classic voices, keeping its units, so the vocoder and
any LM trained on those units need no retraining (``tokenizers_mm.speech_invariance``).

Each step draws sentences of the world (captions, questions and answers about scenes of a
style's ``train`` ranges), speaks each in a voice and effects drawn from the style's training
ranges (never its ``unseen`` ones) for the student, and the same sentence in one of the classic
voices for the teacher: at a speed near the student's (within the classic voices' own range
plus the speed perturbation the tokenizer trained with), stretched to the student's clean
length and padded with its silences, so the two are frame-aligned."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The classic voices speak at 150-175 words/min and the tokenizer trained with +-14% speed
# perturbation: the teacher's speed is the student's, clipped to what it has heard.
TEACHER_SPEEDS = (135, 195)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.cli_args import add_tuning_arguments

    add_tuning_arguments(parser, "speech", str(ASSETS / "tokenizers" / "speech"), batch_size=8)
    parser.add_argument(
        "--ctc-weight",
        type=float,
        default=0.3,
        help="weight of the unit reader's CTC loss on the student's units, beside the distance",
    )
    parser.add_argument(
        "--classic-share",
        type=float,
        default=0.25,
        help="share of pairs whose student clip is the classic one itself, holding the "
        "classic voices to their units",
    )


def stretch(wave: np.ndarray, length: int) -> np.ndarray:
    """``wave`` linearly resampled to ``length`` samples (a small speed change)."""
    positions = np.linspace(0, len(wave) - 1, length)
    return np.interp(positions, np.arange(len(wave)), wave).astype(np.float32)


def pair_maker(style: str, classic_share: float = 0.25, renderer=None):
    """(n, rng) -> (n ``(waveform, transcript)`` clips in voices and effects of ``style``'s
    train ranges, the same sentences frame-aligned in the classic voices); in
    ``classic_share`` of the pairs the first clip is the classic one itself."""
    import dataclasses

    from training.toyworld.language import LANGS, describe
    from training.toyworld.scenes import sample_scene
    from training.toyworld.speech import GENERATION_VOICES, SAMPLE_RATE, SpeechRenderer
    from training.toyworld.styles import world_style
    from training.toyworld.tasks import spoken_text
    from training.toyworld.voices import apply_effects, sample_effects, sample_voice

    drawing, speaking = world_style(style).for_split("train")
    if speaking.voices is not None:
        raise ValueError(f"style {style!r} speaks only the classic voices: nothing to learn")
    if not 0 <= classic_share < 1:
        raise ValueError(f"classic share must lie in [0, 1), got {classic_share}")
    renderer = renderer or SpeechRenderer()

    def make_pairs(n, rng):
        styled, canonical = [], []
        for _ in range(n):
            scene, lang = sample_scene(rng, drawing=drawing), str(rng.choice(LANGS))
            text = spoken_text(rng, scene, lang, describe(scene, lang, int(rng.integers(2))))
            voice, effects = sample_voice(rng, lang, speaking), sample_effects(rng, speaking)
            classic = GENERATION_VOICES[lang][int(rng.integers(len(GENERATION_VOICES[lang])))]
            classic = dataclasses.replace(classic, speed=int(np.clip(voice.speed, *TEACHER_SPEEDS)))
            clean = renderer.render(text, voice)
            lead, trail = (int(s * SAMPLE_RATE) for s in (effects.lead_s, effects.trail_s))
            canonical.append(
                np.pad(stretch(renderer.render(text, classic), len(clean)), (lead, trail))
            )
            keep_classic = classic_share > 0 and rng.random() < classic_share
            styled.append((canonical[-1] if keep_classic else apply_effects(clean, effects), text))
        return styled, canonical

    return make_pairs


def run(args: argparse.Namespace) -> int:
    import torch

    from tokenizers_mm.audio import SpeechUnitTokenizer
    from tokenizers_mm.speech_invariance import distil_voice_invariance

    if not (Path(args.init) / "config.json").is_file():
        raise ValueError(f"--init {args.init}: no saved speech tokenizer there")
    make_pairs = pair_maker(args.style, args.classic_share)
    torch.set_num_threads(args.threads)
    tokenizer = SpeechUnitTokenizer.from_pretrained(args.init)
    distil_voice_invariance(
        tokenizer, make_pairs, args.out, args.steps, args.batch_size, args.lr, args.ctc_weight,
        args.seed,
    )  # fmt: skip
    print(f"voice-invariant speech tokenizer saved to {args.out}")
    return 0
