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
from training.toyworld.looks import DrawingLook, encode_image, render_look, sample_look
from training.toyworld.motion import (
    MOTION_QUESTIONS,
    ask_motion,
    describe_motion,
    end_scene,
    motion_frames,
    sample_motion,
    write_clip,
)
from training.toyworld.scenes import NOVEL_PAIRS, Scene, render_scene, sample_scene
from training.toyworld.speech import SpeechRenderer, Voice
from training.toyworld.styles import CLASSIC, WorldStyle, world_style
from training.toyworld.voices import SpeechEffects, apply_effects, sample_effects, sample_voice

TASKS: tuple[str, ...] = ("caption", "draw", "asr", "tts", "spoken_vqa", "vqa", "translate")
# Clips of a moving object; not in the default TASKS, so classic worlds keep their samples.
VIDEO_TASKS: tuple[str, ...] = ("video_caption", "video_qa")
ALL_TASKS: tuple[str, ...] = TASKS + VIDEO_TASKS
SPEECH_TASKS = frozenset({"asr", "tts", "spoken_vqa"})
MANIFEST_NAME = "manifest.jsonl"


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


class _SampleWriter:
    """Writes media under ``media/`` and returns the segments that point at them."""

    def __init__(self, root: Path, size: int, renderer: SpeechRenderer | None) -> None:
        self.root = root
        self.size = size
        self.renderer = renderer

    def image(self, scene: Scene, name: str, look: DrawingLook | None) -> dict[str, str]:
        if look is None:
            path = f"media/{name}.png"
            render_scene(scene, self.size).save(self.root / path, format="PNG")
        else:
            data, extension = encode_image(render_look(scene, look), look)
            path = f"media/{name}.{extension}"
            (self.root / path).write_bytes(data)
        return {"type": "image", "path": path}

    def video(self, scenes: list[Scene], name: str, look: DrawingLook | None) -> dict[str, str]:
        path = f"media/{name}.mp4"
        if look is None:
            frames = [render_scene(scene, self.size) for scene in scenes]
        else:  # the clip's frames carry the look's drawing; the codec does the compressing
            frames = [render_look(scene, look) for scene in scenes]
        write_clip(frames, self.root / path)
        return {"type": "video", "path": path}

    def audio(
        self, text: str, voice: Voice, name: str, with_text: bool, effects: SpeechEffects | None
    ) -> dict[str, str]:
        import soundfile as sf

        from training.toyworld.speech import SAMPLE_RATE

        path = f"media/{name}.wav"
        wave = apply_effects(self.renderer.render(text, voice), effects)
        sf.write(self.root / path, wave, SAMPLE_RATE, subtype="PCM_16")
        segment = {"type": "audio", "path": path, "voice": voice.id}
        if with_text:
            segment["text"] = text
        return segment


def _pick_split(rng: np.random.Generator, shares: dict[str, float]) -> str:
    return str(rng.choice(list(shares), p=list(shares.values())))


def _pick_question(rng: np.random.Generator, scene: Scene) -> tuple[str, int]:
    """A question type and the index of the object it asks about."""
    target = int(rng.integers(len(scene.objects)))
    qtypes = list(QUESTION_TYPES)
    named = scene.objects[target].attrs[:3]
    if any(o.attrs[:3] == named for i, o in enumerate(scene.objects) if i != target):
        qtypes.remove("position")  # "where is the big red circle?" would not name one object
    return str(rng.choice(qtypes)), target


def spoken_text(rng: np.random.Generator, scene: Scene, lang: str, caption: str) -> str:
    """What ASR/TTS samples say: a caption, a question or an answer."""
    kind = int(rng.choice(3, p=[0.5, 0.25, 0.25]))
    if kind == 0:
        return caption
    qtype, target = _pick_question(rng, scene)
    return ask(scene, qtype, lang, target)[kind - 1]


def _build_sample(
    index: int, task: str, seed: int, writer: _SampleWriter, style: WorldStyle
) -> dict[str, Any]:
    """Draw sample ``index`` of ``task``, write its media and return its manifest record."""
    if task not in ALL_TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {ALL_TASKS}")
    rng = np.random.default_rng([seed, index])
    split = _pick_split(rng, style.split_shares)
    drawing, speaking = style.for_split(split)
    scene = sample_scene(rng, novel=split == "novel", drawing=drawing)
    motion = None
    while task in VIDEO_TASKS and (motion := sample_motion(rng, scene)) is None:
        scene = sample_scene(rng, novel=split == "novel", drawing=drawing)
    lang = str(rng.choice(LANGS))
    other_lang = "ko" if lang == "en" else "en"
    style = int(rng.integers(2))
    name = f"{task}-{index:06d}"
    caption = describe(scene, lang, style)
    meta: dict[str, Any] = {"lang": lang, "attributes": scene.to_meta()}
    # Everything the classic world drew comes first, so its samples stay byte-identical.
    look = sample_look(rng, drawing, writer.size) if drawing.looks else None
    if look is not None and task not in ("asr", "tts", "translate"):
        meta["look"] = look.to_meta()

    if task == "caption":
        user = [writer.image(scene, name, look), _text(PROMPTS["caption"][lang])]
        assistant = [_text(caption)]
    elif task == "draw":
        user = [_text(PROMPTS["draw"][lang].format(text=caption))]
        assistant = [writer.image(scene, name, look)]
    elif task in ("asr", "tts"):
        spoken, voice = spoken_text(rng, scene, lang, caption), sample_voice(rng, lang, speaking)
        if task == "asr":
            user = [
                writer.audio(spoken, voice, name, False, sample_effects(rng, speaking)),
                _text(PROMPTS["asr"][lang]),
            ]
            assistant = [_text(spoken)]
        else:
            user = [_text(PROMPTS["tts"][lang].format(text=spoken))]
            assistant = [writer.audio(spoken, voice, name, True, sample_effects(rng, speaking))]
        meta.update(text=spoken, voice=voice.id)
    elif task in ("vqa", "spoken_vqa"):
        qtype, target = _pick_question(rng, scene)
        question, answer = ask(scene, qtype, lang, target)
        meta.update(question_type=qtype, question=question, answer=answer)
        meta["answer_candidates"] = answer_candidates(qtype, lang, drawing.max_objects)
        if task == "vqa":
            user = [writer.image(scene, name, look), _text(question)]
            assistant = [_text(answer)]
        else:
            voice, answer_voice = (
                sample_voice(rng, lang, speaking),
                sample_voice(rng, lang, speaking),
            )
            user = [
                writer.image(scene, name, look),
                writer.audio(
                    question, voice, f"{name}-question", False, sample_effects(rng, speaking)
                ),
                _text(PROMPTS["spoken_vqa"][lang]),
            ]
            assistant = [
                writer.audio(
                    answer, answer_voice, f"{name}-answer", True, sample_effects(rng, speaking)
                )
            ]
            meta.update(voice=voice.id, answer_voice=answer_voice.id)
    elif task in VIDEO_TASKS:
        clip = writer.video(motion_frames(motion), name, look)
        meta.update(motion=motion.to_meta(), end_attributes=end_scene(motion).to_meta())
        if task == "video_caption":
            user = [clip, _text(PROMPTS["video_caption"][lang])]
            assistant = [_text(describe_motion(motion, lang))]
        else:
            qtype = str(rng.choice(MOTION_QUESTIONS))
            question, answer = ask_motion(motion, qtype, lang)
            meta.update(question_type=qtype, question=question, answer=answer)
            user = [clip, _text(question)]
            assistant = [_text(answer)]
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
    style: str | WorldStyle = "classic",
) -> Path:
    """Write ``n`` samples (tasks taken in turn) to ``out_dir/manifest.jsonl`` and
    ``out_dir/media/``; returns the manifest path. Same arguments, same bytes.
    ``style`` names a world style (``training.toyworld.styles``: "classic", "varied") or is
    one. Pass a ``renderer`` to share its cache of espeak-ng renderings between calls."""
    from tqdm import tqdm

    if isinstance(style, str):
        style = world_style(style)

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    unknown = sorted(set(tasks) - set(ALL_TASKS))
    if unknown or not tasks:
        raise ValueError(f"unknown or no tasks {unknown}; choose from {ALL_TASKS}")
    root = Path(out_dir)
    (root / "media").mkdir(parents=True, exist_ok=True)
    if renderer is None and SPEECH_TASKS & set(tasks):
        renderer = SpeechRenderer()
    writer = _SampleWriter(root, size, renderer)
    manifest = root / MANIFEST_NAME
    with manifest.open("w", encoding="utf-8") as file:
        for index in tqdm(range(n), desc="toyworld", disable=not progress):
            record = _build_sample(index, tasks[index % len(tasks)], seed, writer, style)
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    world = {
        "seed": seed,
        "n": n,
        "size": size,
        "tasks": list(tasks),
        "split_shares": style.split_shares,
        "novel_pairs": sorted(NOVEL_PAIRS),
    }
    if style.speaking.voices is not None:
        world["voices"] = {
            lang: [v.id for v in style.speaking.fixed_voices(lang)] for lang in LANGS
        }
    if style != CLASSIC:  # the classic world.json stays as it was
        world["style"] = style.to_json()
    (root / "world.json").write_text(json.dumps(world, indent=2) + "\n", encoding="utf-8")
    return manifest
