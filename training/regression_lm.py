"""Regression guard through the LM: fixed cases in every direction that the shipped default
model answers, each judged by the matrix's own scorer (``training.matrix_scores``).

The cases are the demo's examples (``app.examples``: the scene, the two spoken clips, the
draw and speak sentences) plus the text directions over the same scene, written as manifest
records so that the matrix's prompt building and scoring apply unchanged. A case passes when
its scores are no worse than those recorded when the model shipped
(``assets/default-model/regression.json``, within ``TOLERANCE``): the shipped micro model gets
many of them wrong, and the guard catches any change that makes it worse.
"""

from __future__ import annotations

from typing import Any

from training.regression import SPEECH_DISTRACTORS, CaseResult


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


# How much worse than at ship time a case may score before the guard fails: shares (exact,
# match, right modality) may not drop at all; means of fractions and CERs by at most 0.15,
# chrF by at most 15 points.
TOLERANCE = {"chrf": 15.0, "cer": 0.15, "unit_cer": 0.15, "attribute_accuracy": 0.15}
LOWER_IS_BETTER = {"cer", "unit_cer"}


def lm_scores(pipeline: Any) -> dict[str, dict[str, float]]:
    """Every fixed case answered by ``pipeline`` and judged: ``{case: {metric: score}}``, the
    case named by its direction and prompt."""
    from app.examples import SPOKEN_SENTENCE
    from training.matrix import answer
    from training.matrix_scores import DIRECTIONS, ScoreContext

    records = case_records()
    # TTS is judged among the case sentence and other sentences of the world's language.
    tts = {"en": [SPOKEN_SENTENCE, *SPEECH_DISTRACTORS["en"]]}
    probe = getattr(pipeline.model, "code_tokenizers", {}).get("audio")
    context = ScoreContext(tts, probe if hasattr(probe, "transcribe") else None)
    scores = {}
    for direction in DIRECTIONS:
        for record in (r for r in records if direction.select(r)):
            result, _ = answer(pipeline, direction, record, {"seed": 0})
            case = f"{direction.name}: {record['turns'][1]['segments'][-1].get('text', '')}"
            scores[case] = {
                k: round(v, 4) for k, v in direction.score(record, result, context).items()
            }
    return scores


def _worse(metric: str, found: float, recorded: float) -> bool:
    slack = TOLERANCE.get(metric, 0.0)
    if metric in LOWER_IS_BETTER:
        return found > recorded + slack
    return found < recorded - slack


def compare(
    found: dict[str, dict[str, float]], recorded: dict[str, dict[str, float]]
) -> list[CaseResult]:
    """Each recorded case against its score now: ``found`` is the case's scores, and it passes
    when no metric is worse than recorded (within ``TOLERANCE``)."""
    results = []
    for case, before in recorded.items():
        now = found.get(case, {})
        bad = {m: now.get(m) for m in before if m not in now or _worse(m, now[m], before[m])}
        results.append(
            CaseResult(
                case, "as shipped", "as shipped" if not bad else {"now": now, "shipped": before}
            )
        )
    return results


if __name__ == "__main__":  # python -m training.regression_lm OUT.json [MODEL]: record the scores
    import json
    import sys

    import omni

    path = sys.argv[1]
    recorded = lm_scores(omni.load(sys.argv[2] if len(sys.argv) > 2 else None))
    with open(path, "w", encoding="utf-8") as out:
        json.dump(recorded, out, indent=1, ensure_ascii=False)
    print(f"{len(recorded)} cases recorded in {path}")
