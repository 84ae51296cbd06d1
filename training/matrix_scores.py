"""How each direction of the any-to-any matrix is judged: one pure scorer per direction,
``score(record, result, context) -> {metric: value}``, built on the world's independent
checkers (``training.evaluate``); no model judges another.

``record`` is the manifest line (its ``meta`` holds the truth), ``result`` the model's
``GenerationResult``. ``ScoreContext`` holds what several samples share: the speech checker,
candidate sentences for TTS, and the unit probe (the speech tokenizer's own CTC reading).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from training.evaluate import attribute_accuracy, cer, check_image, chrf, exact_match, parse_caption
from training.toyworld import ObjectAttrs

# Metric -> "share" (0/1 per sample: Wilson interval) or "mean" (normal interval of the mean).
METRIC_KINDS = {
    "attribute_accuracy": "mean",
    "exact_scene": "share",
    "exact": "share",
    "chrf": "mean",
    "cer": "mean",
    "match": "share",
    "unit_cer": "mean",
    "right_modality": "share",
    "call_validity": "mean",
    "argument_match": "mean",
    "success": "share",
    "type_accuracy": "share",
    "over_refusal": "share",
}
METRIC_UPPER = {"chrf": 100.0}  # every other metric lies in [0, 1]


@dataclass
class ScoreContext:
    """Shared by the scorers of one run: built lazily, since only audio directions need it."""

    tts_candidates: dict[str, list[str]] = field(default_factory=dict)  # lang -> sentences
    unit_probe: Any = None  # an object with transcribe(wave, sample_rate) -> str
    _checker: Any = None

    @property
    def speech_checker(self):
        if self._checker is None:
            from training.evaluate import SpeechChecker

            self._checker = SpeechChecker()
        return self._checker


def _truth(record: dict[str, Any]) -> list[ObjectAttrs]:
    return [ObjectAttrs(**item) for item in record["meta"]["attributes"]]


def reference_text(record: dict[str, Any]) -> str:
    """The assistant turn's text (the reference answer of a text direction)."""
    segments = record["turns"][-1]["segments"]
    return " ".join(s.get("text", "") for s in segments if s["type"] == "text")


def _scene_scores(predicted: list[ObjectAttrs] | set[ObjectAttrs], record: dict) -> dict:
    truth = _truth(record)
    return {
        "attribute_accuracy": attribute_accuracy(predicted, truth),
        "exact_scene": float(sorted(predicted) == sorted(truth)),
    }


def score_caption(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    """The caption read back by the caption parser, against the scene's attributes."""
    return _scene_scores(parse_caption(result.text), record)


def score_draw(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    """The drawn image read back by the pixel checker, against the scene's attributes."""
    if result.image is None:
        return {"attribute_accuracy": 0.0, "exact_scene": 0.0}
    return _scene_scores(check_image(result.image), record)


def score_exact(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    """VQA and video QA: exact match (case, punctuation and spacing aside)."""
    return {"exact": float(exact_match(result.text, reference_text(record)))}


def score_translation(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    reference = reference_text(record)
    return {
        "exact": float(exact_match(result.text, reference)),
        "chrf": chrf(result.text, reference),
    }


def score_asr(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    return {"cer": min(1.0, cer(result.text.strip(), record["meta"]["text"]))}


def _picked(result: Any, candidates: list[str], context: ScoreContext) -> str | None:
    if result.audio is None or len(result.audio[1]) < result.audio[0] // 20:
        return None
    rate, wave = result.audio
    return candidates[context.speech_checker.pick(wave, rate, candidates)]


def score_tts(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    """The speech checker picks the sentence said among the run's sentences of that language;
    the unit probe's transcript gives a CER."""
    text = record["meta"]["text"]
    candidates = [text] + [
        c for c in context.tts_candidates.get(record["meta"]["lang"], []) if c != text
    ]
    scores = {"match": float(_picked(result, candidates, context) == text)}
    if context.unit_probe is not None:
        rate, wave = result.audio if result.audio is not None else (16000, None)
        heard = context.unit_probe.transcribe(wave, rate) if wave is not None else ""
        # The probe spells Korean in conjoining jamo and knows no punctuation.
        spoken = "".join(ch for ch in text.lower() if ch not in ".,?!")
        scores["unit_cer"] = min(1.0, cer(unicodedata.normalize("NFC", heard), spoken))
    return scores


def score_spoken_vqa(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    """The speech checker picks the spoken answer among the question type's answers."""
    meta = record["meta"]
    picked = _picked(result, list(meta["answer_candidates"]), context)
    return {"match": float(picked is not None and exact_match(picked, meta["answer"]))}


def produced_modality(result: Any) -> str:
    if result.image is not None:
        return "image"
    return "audio" if result.audio is not None else "text"


EXPECTED_MODALITY = {"draw": "image", "tts": "audio", "spoken_vqa": "audio"}  # else text


def score_auto(record: dict, result: Any, context: ScoreContext) -> dict[str, float]:
    """With ``out_modality="auto"``, did the model answer in the modality the prompt asks for?"""
    expected = EXPECTED_MODALITY.get(record["task"], "text")
    return {"right_modality": float(produced_modality(result) == expected)}


@dataclass(frozen=True)
class Direction:
    """One row group of the matrix: which records, which output modality, which scorer, and
    how a record is answered (None: one ``pipeline.generate`` of the prompt; else
    ``run(pipeline, record, options)``, as the tool loop of ``training.matrix_agentic``)."""

    name: str
    select: Callable[[dict], bool]
    out_modality: str
    score: Callable[[dict, Any, ScoreContext], dict[str, float]]
    run: Callable[[Any, dict, dict], Any] | None = None


def _task(task: str, lang: str | None = None) -> Callable[[dict], bool]:
    return lambda r: r.get("task") == task and (lang is None or r["meta"].get("lang") == lang)


def _has_video(record: dict) -> bool:
    return any(s["type"] == "video" for t in record["turns"] for s in t["segments"])


DIRECTIONS: tuple[Direction, ...] = (
    Direction("caption_en", _task("caption", "en"), "text", score_caption),
    Direction("caption_ko", _task("caption", "ko"), "text", score_caption),
    Direction("vqa", _task("vqa"), "text", score_exact),
    Direction(
        "video_qa",
        lambda r: _has_video(r) and r["turns"][-1]["segments"][0]["type"] == "text",
        "text",
        score_exact,
    ),
    Direction("translate_en_ko", _task("translate", "en"), "text", score_translation),
    Direction("translate_ko_en", _task("translate", "ko"), "text", score_translation),
    Direction("draw", _task("draw"), "image", score_draw),
    Direction("asr_en", _task("asr", "en"), "text", score_asr),
    Direction("asr_ko", _task("asr", "ko"), "text", score_asr),
    Direction("tts", _task("tts"), "audio", score_tts),
    Direction("spoken_vqa", _task("spoken_vqa"), "audio", score_spoken_vqa),
    Direction(
        "auto",
        lambda r: r.get("task") in ("caption", "draw", "tts", "vqa", "translate"),
        "auto",
        score_auto,
    ),
)
