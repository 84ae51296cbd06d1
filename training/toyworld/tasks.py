"""Samples of every task type over the toy world, written as a JSONL manifest plus media.

Sample ``i`` is drawn from its own generator ``default_rng([seed, i])``, so it is the same
whatever ``n`` is, and the whole output is byte-identical for the same arguments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.toyworld.language import (
    LANGS,
    PROMPTS,
    QUESTION_TYPES,
    SYSTEM_PROMPT,
    answer_candidates,
    ask,
    describe,
)
from training.toyworld.scenes import NOVEL_PAIRS, Scene, render_scene, sample_scene
from training.toyworld.speech import GENERATION_VOICES, SpeechRenderer, Voice

TASKS: tuple[str, ...] = ("caption", "draw", "asr", "tts", "spoken_vqa", "vqa", "translate")
SPEECH_TASKS = frozenset({"asr", "tts", "spoken_vqa"})
# Share of samples per split; `novel` scenes use a held-out (colour, shape) pair.
SPLIT_SHARES: dict[str, float] = {"train": 0.8, "validation": 0.05, "test": 0.05, "novel": 0.1}
SPLITS: tuple[str, ...] = tuple(SPLIT_SHARES)
MANIFEST_NAME = "manifest.jsonl"


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


class _SampleWriter:
    """Writes media under ``media/`` and returns the segments that point at them."""

    def __init__(self, root: Path, size: int, renderer: SpeechRenderer | None) -> None:
        self.root = root
        self.size = size
        self.renderer = renderer

    def image(self, scene: Scene, name: str) -> dict[str, str]:
        path = f"media/{name}.png"
        render_scene(scene, self.size).save(self.root / path, format="PNG")
        return {"type": "image", "path": path}

    def audio(self, text: str, voice: Voice, name: str, with_text: bool) -> dict[str, str]:
        path = f"media/{name}.wav"
        self.renderer.write(self.root / path, text, voice)
        segment = {"type": "audio", "path": path, "voice": voice.id}
        if with_text:
            segment["text"] = text
        return segment


def _pick_split(rng: np.random.Generator) -> str:
    return str(rng.choice(SPLITS, p=list(SPLIT_SHARES.values())))


def _pick_question(rng: np.random.Generator, scene: Scene) -> tuple[str, int]:
    """A question type and the index of the object it asks about."""
    target = int(rng.integers(len(scene.objects)))
    qtypes = list(QUESTION_TYPES)
    if len(scene.objects) == 2 and scene.objects[0].attrs[:3] == scene.objects[1].attrs[:3]:
        qtypes.remove("position")  # "where is the big red circle?" would not name one object
    return str(rng.choice(qtypes)), target


def _pick_voice(rng: np.random.Generator, lang: str) -> Voice:
    voices = GENERATION_VOICES[lang]
    return voices[int(rng.integers(len(voices)))]


def _spoken_text(rng: np.random.Generator, scene: Scene, lang: str, caption: str) -> str:
    """What ASR/TTS samples say: a caption, a question or an answer."""
    kind = int(rng.choice(3, p=[0.5, 0.25, 0.25]))
    if kind == 0:
        return caption
    qtype, target = _pick_question(rng, scene)
    return ask(scene, qtype, lang, target)[kind - 1]


def _build_sample(index: int, task: str, seed: int, writer: _SampleWriter) -> dict[str, Any]:
    """Draw sample ``index`` of ``task``, write its media and return its manifest record."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    rng = np.random.default_rng([seed, index])
    split = _pick_split(rng)
    scene = sample_scene(rng, novel=split == "novel")
    lang = str(rng.choice(LANGS))
    other_lang = "ko" if lang == "en" else "en"
    style = int(rng.integers(2))
    name = f"{task}-{index:06d}"
    caption = describe(scene, lang, style)
    meta: dict[str, Any] = {"lang": lang, "attributes": scene.to_meta()}

    if task == "caption":
        user = [writer.image(scene, name), _text(PROMPTS["caption"][lang])]
        assistant = [_text(caption)]
    elif task == "draw":
        user = [_text(PROMPTS["draw"][lang].format(text=caption))]
        assistant = [writer.image(scene, name)]
    elif task in ("asr", "tts"):
        spoken, voice = _spoken_text(rng, scene, lang, caption), _pick_voice(rng, lang)
        if task == "asr":
            user = [writer.audio(spoken, voice, name, False), _text(PROMPTS["asr"][lang])]
            assistant = [_text(spoken)]
        else:
            user = [_text(PROMPTS["tts"][lang].format(text=spoken))]
            assistant = [writer.audio(spoken, voice, name, True)]
        meta.update(text=spoken, voice=voice.id)
    elif task in ("vqa", "spoken_vqa"):
        qtype, target = _pick_question(rng, scene)
        question, answer = ask(scene, qtype, lang, target)
        meta.update(question_type=qtype, question=question, answer=answer)
        meta["answer_candidates"] = answer_candidates(qtype, lang)
        if task == "vqa":
            user = [writer.image(scene, name), _text(question)]
            assistant = [_text(answer)]
        else:
            voice, answer_voice = _pick_voice(rng, lang), _pick_voice(rng, lang)
            user = [
                writer.image(scene, name),
                writer.audio(question, voice, f"{name}-question", False),
                _text(PROMPTS["spoken_vqa"][lang]),
            ]
            assistant = [writer.audio(answer, answer_voice, f"{name}-answer", True)]
            meta.update(voice=voice.id, answer_voice=answer_voice.id)
    else:  # translate: a caption or a question, into the other language
        if rng.random() < 0.6:
            source, target = caption, describe(scene, other_lang, style)
        else:
            qtype, target_object = _pick_question(rng, scene)
            source = ask(scene, qtype, lang, target_object)[0]
            target = ask(scene, qtype, other_lang, target_object)[0]
        user = [_text(PROMPTS["translate"][lang].format(text=source))]
        assistant = [_text(target)]
        meta["target_lang"] = other_lang
    turns = [
        {"role": "system", "segments": [_text(SYSTEM_PROMPT)]},
        {"role": "user", "segments": user},
        {"role": "assistant", "segments": assistant},
    ]
    return {"id": name, "task": task, "split": split, "turns": turns, "meta": meta}


def generate(
    out_dir: str | Path,
    n: int,
    seed: int,
    size: int = 64,
    tasks: Sequence[str] = TASKS,
    progress: bool = True,
    renderer: SpeechRenderer | None = None,
) -> Path:
    """Write ``n`` samples (tasks taken in turn) to ``out_dir/manifest.jsonl`` and
    ``out_dir/media/``; returns the manifest path. Same arguments, same bytes.
    Pass a ``renderer`` to share its cache of espeak-ng renderings between calls."""
    from tqdm import tqdm

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"unknown or no tasks {unknown}; choose from {TASKS}")
    root = Path(out_dir)
    (root / "media").mkdir(parents=True, exist_ok=True)
    if renderer is None and SPEECH_TASKS & set(tasks):
        renderer = SpeechRenderer()
    writer = _SampleWriter(root, size, renderer)
    manifest = root / MANIFEST_NAME
    with manifest.open("w", encoding="utf-8") as file:
        for index in tqdm(range(n), desc="toyworld", disable=not progress):
            record = _build_sample(index, tasks[index % len(tasks)], seed, writer)
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    world = {
        "seed": seed,
        "n": n,
        "size": size,
        "tasks": list(tasks),
        "split_shares": SPLIT_SHARES,
        "novel_pairs": sorted(NOVEL_PAIRS),
        "voices": {lang: [v.id for v in vs] for lang, vs in GENERATION_VOICES.items()},
    }
    (root / "world.json").write_text(json.dumps(world, indent=2) + "\n", encoding="utf-8")
    return manifest
