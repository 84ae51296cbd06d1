"""Regression guard through the LM: fixed cases in every direction that the shipped default
model answers, each judged by the matrix's own scorer (``training.matrix_scores``).

The cases are the demo's examples (``app.examples``: the scene, the two spoken clips, the
draw and speak sentences) plus the text directions over the same scene, written as manifest
records so that the matrix's prompt building and scoring apply unchanged. A case passes when
its direction's score is perfect (a CER counts up to ``MAX_CER``).
"""

from __future__ import annotations

from typing import Any

from training.regression import SPEECH_DISTRACTORS, CaseResult

MAX_CER = 0.1  # one wrong character in ten still passes an ASR case
PERFECT = {"exact_scene": 1.0, "exact": 1.0, "match": 1.0, "right_modality": 1.0}


def _record(task: str, lang: str, user: list[dict], reply: list[dict], **meta: Any) -> dict:
    from training.toyworld.language import SYSTEM_PROMPT

    return {
        "id": f"regression-{task}-{lang}",
        "task": task,
        "split": "test",
        "turns": [
            {"role": "system", "segments": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "segments": user},
            {"role": "assistant", "segments": reply},
        ],
        "meta": {"lang": lang, **meta},
    }


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def case_records() -> list[dict]:
    """The fixed cases as manifest records (media paths absolute, into ``assets/examples``)."""
    from app import examples
    from training.toyworld import ObjectAttrs, Scene
    from training.toyworld.language import PROMPTS, answer_candidates, ask, describe

    attrs = [
        ObjectAttrs("circle", "red", "big", "left"),
        ObjectAttrs("square", "blue", "small", "right"),
    ]
    scene, meta = Scene.from_attributes(attrs), [a._asdict() for a in attrs]
    image = {"type": "image", "path": str(examples.SCENE)}
    question, reply = ask(scene, "colour", "en", 0)  # the spoken question's text and answer
    records = [
        _record("caption", lang, [image, _text(PROMPTS["caption"][lang])], [], attributes=meta)
        for lang in ("en", "ko")
    ]
    records.append(_record("vqa", "en", [image, _text(question)], [_text(reply)]))
    for lang, other in (("en", "ko"), ("ko", "en")):
        source = describe(scene, lang)
        prompt = PROMPTS["translate"][lang].format(text=source)
        records.append(_record("translate", lang, [_text(prompt)], [_text(describe(scene, other))]))
    drawn = PROMPTS["draw"]["en"].format(text=describe(scene, "en"))
    records.append(_record("draw", "en", [_text(drawn)], [], attributes=meta))
    clip = {"type": "audio", "path": str(examples.SENTENCE)}
    records.append(
        _record("asr", "en", [clip, _text(PROMPTS["asr"]["en"])], [], text=examples.SPOKEN_SENTENCE)
    )
    spoken = examples.SPOKEN_SENTENCE
    records.append(
        _record("tts", "en", [_text(PROMPTS["tts"]["en"].format(text=spoken))], [], text=spoken)
    )
    asked = {"type": "audio", "path": str(examples.QUESTION)}
    records.append(
        _record(
            "spoken_vqa",
            "en",
            [image, asked, _text(PROMPTS["spoken_vqa"]["en"])],
            [],
            answer=reply,
            answer_candidates=answer_candidates("colour", "en"),
        )
    )
    return records


def _passed(scores: dict[str, float]) -> bool:
    if "cer" in scores:
        return scores["cer"] <= MAX_CER
    return all(scores.get(metric, 1.0) >= need for metric, need in PERFECT.items())


def lm_cases(pipeline: Any) -> list[CaseResult]:
    """Every fixed case answered by ``pipeline`` and judged; one result per (direction, case).
    ``found`` is "perfect", or the scores of a case that failed."""
    from training.matrix import answer
    from training.matrix_scores import DIRECTIONS, ScoreContext

    records = case_records()
    # TTS is judged among the case sentence and other sentences of the world's language.
    from app.examples import SPOKEN_SENTENCE

    tts = {"en": [SPOKEN_SENTENCE, *SPEECH_DISTRACTORS["en"]]}
    probe = getattr(pipeline.model, "code_tokenizers", {}).get("audio")
    context = ScoreContext(tts, probe if hasattr(probe, "transcribe") else None)
    results = []
    for direction in DIRECTIONS:
        for record in (r for r in records if direction.select(r)):
            result, _ = answer(pipeline, direction, record, {"seed": 0})
            scores = direction.score(record, result, context)
            case = f"{direction.name}: {record['turns'][1]['segments'][-1].get('text', '')}"
            shown = {k: round(v, 3) for k, v in scores.items()}
            results.append(CaseResult(case, "perfect", "perfect" if _passed(scores) else shown))
    return results
