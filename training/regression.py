"""Regression guard: fixed cases a shipped component (or, once it ships, the default model)
must get right, each judged by the world's checkers. A CI test runs them; a change that breaks
a component then fails CI with the case that broke.

Today the cases are component round trips, the paths the default model's answers take after
the LM: a described scene rendered, encoded to image codes and decoded back to pixels must read
back (``check_image``) as the description; a sentence spoken, encoded to speech units and
vocoded must be picked by the speech checker among distractors. Cases through the LM (caption,
VQA, translation, ASR, draw, TTS and spoken VQA of the shipped pipeline) join them when the
default model ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.evaluate import SpeechChecker, check_image, parse_caption
from training.toyworld import GENERATION_VOICES, Scene, SpeechRenderer, render_scene
from training.toyworld.speech import SAMPLE_RATE

DRAW_CASES = ("a big red circle on the left", "a small blue square at the top")
SPEECH_CASES = {
    "en": ("a big red circle on the left", "there is a small green star at the top"),
    "ko": ("왼쪽에 큰 빨간 원", "가운데에 있어요"),
}
# Other sentences of the world's language, so that the checker has to tell them apart.
SPEECH_DISTRACTORS = {
    "en": ("a small yellow triangle on the right", "where is the blue square", "it is green"),
    "ko": ("오른쪽에 작은 노란 삼각형", "파란 사각형은 어디에 있나요", "초록색이에요"),
}


@dataclass
class CaseResult:
    """One fixed case: what was asked, what the checker read back, and whether it matches."""

    case: str
    expected: Any
    found: Any

    @property
    def passed(self) -> bool:
        return self.expected == self.found


def image_round_trip(tokenizer: Any, decoder: Any, caption: str, seed: int = 0) -> CaseResult:
    """Scene of ``caption`` -> pixels -> image codes -> decoder -> pixels -> checker."""
    expected = sorted(parse_caption(caption))
    image = render_scene(Scene.from_attributes(expected), decoder.config.image_size)
    codes = tokenizer.encode(image)
    decoded = decoder.decode(codes, seed=seed)
    return CaseResult(f"draw: {caption}", expected, sorted(check_image(decoded)))


def speech_round_trip(
    tokenizer: Any,
    vocoder: Any,
    sentence: str,
    lang: str,
    checker: SpeechChecker,
    renderer: SpeechRenderer | None = None,
) -> CaseResult:
    """``sentence`` spoken (a data voice) -> speech units -> vocoder -> the speech checker's
    pick among the sentence and the language's distractors."""
    renderer = renderer or SpeechRenderer()
    voice = GENERATION_VOICES[lang][0]
    units = tokenizer.encode(renderer.render(sentence, voice), SAMPLE_RATE)
    rate, wave = vocoder.decode(units, speaker=voice.id)  # the voice it was spoken in
    candidates = [sentence, *SPEECH_DISTRACTORS[lang]]
    return CaseResult(
        f"speech: {sentence}", sentence, candidates[checker.pick(wave, rate, candidates)]
    )


def component_cases(
    image_tokenizer: Any, image_decoder: Any, speech_tokenizer: Any, vocoder: Any
) -> list[CaseResult]:
    """Every fixed component case, in order."""
    results = [image_round_trip(image_tokenizer, image_decoder, c) for c in DRAW_CASES]
    checker = SpeechChecker()
    for lang, sentences in SPEECH_CASES.items():
        for sentence in sentences:
            results.append(speech_round_trip(speech_tokenizer, vocoder, sentence, lang, checker))
    return results


def failures(results: list[CaseResult]) -> list[str]:
    """A line per failed case (empty when every case passes), for an assertion message."""
    return [
        f"{r.case}: expected {r.expected}, checker read {r.found}" for r in results if not r.passed
    ]
