"""Benchmark of the toy world and its checkers.

    .venv/bin/python benchmarks/bench_toyworld.py [--n 2000] [--scenes 1000] [--speech 120]

1. Generation: time to write ``--n`` samples of all tasks, the share spent inside espeak-ng,
   and whether a second run with the same seed is byte-identical.
2. Image checker: accuracy on ``--scenes`` fresh scenes (half one object, half two), per
   attribute and per scene, at 64 px; plus light blur and other sizes.
3. Speech checker: accuracy picking the spoken sentence among candidates that differ in one
   word, for voices not among the references (male and female), per language; the same with
   white noise at 20 dB SNR; and with a single male reference voice on female speech.
4. Spoken captions (how TTS is judged): the true caption among all its one-attribute
   variants (14 candidates for one object, 27 for two), per language.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import ImageFilter

from training.evaluate import SpeechChecker, check_image
from training.toyworld import (
    COLOURS,
    GENERATION_VOICES,
    POSITIONS,
    REFERENCE_VOICES,
    SHAPES,
    SIZES,
    SpeechRenderer,
    answer_candidates,
    caption_candidates,
    describe,
    generate,
    render_scene,
    sample_scene,
)


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def bench_generation(n: int) -> dict:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        renderer = SpeechRenderer()
        start = time.perf_counter()
        generate(first, n, seed=0, renderer=renderer, progress=False)
        seconds = time.perf_counter() - start
        generate(second, n, seed=0, progress=False)
        identical = _tree_hash(Path(first)) == _tree_hash(Path(second))
        files = sum(1 for p in Path(first).rglob("*") if p.is_file())
    print(
        f"generation: {n} samples ({files} files) in {seconds:.1f} s "
        f"({n / seconds:.1f} samples/s); espeak-ng {renderer.espeak_seconds:.1f} s "
        f"= {100 * renderer.espeak_seconds / seconds:.0f}% of it; "
        f"same seed byte-identical: {identical}"
    )
    return {
        "samples": n,
        "files": files,
        "seconds": round(seconds, 1),
        "espeak_seconds": round(renderer.espeak_seconds, 1),
        "same_seed_byte_identical": identical,
    }


def bench_image_checker(n_scenes: int) -> dict:
    rng = np.random.default_rng(20261129)
    scenes = [sample_scene(rng, n_objects=1 + i % 2) for i in range(n_scenes)]
    exact = 0
    attribute_hits = np.zeros(4)
    attribute_total = 0
    for scene in scenes:
        found = check_image(render_scene(scene))
        exact += set(found) == scene.attributes and len(found) == len(scene.objects)
        by_position = {attrs.position: attrs for attrs in found}
        for obj in scene.objects:
            guess = by_position.get(obj.position)
            attribute_total += 1
            if guess is not None:
                attribute_hits += np.array(guess) == np.array(obj.attrs)
    per_attribute = ", ".join(
        f"{name} {100 * hits / attribute_total:.1f}%"
        for name, hits in zip(("shape", "colour", "size", "position"), attribute_hits)
    )
    print(
        f"image checker: {100 * exact / n_scenes:.1f}% of {n_scenes} scenes exactly right "
        f"({per_attribute})"
    )
    names = ("shape", "colour", "size", "position")
    figures = {
        "scenes": n_scenes,
        "exact": exact / n_scenes,
        "per_attribute": {k: hits / attribute_total for k, hits in zip(names, attribute_hits)},
    }
    for label, transform in [
        ("blur 0.5", lambda s: render_scene(s).filter(ImageFilter.GaussianBlur(0.5))),
        ("blur 0.8", lambda s: render_scene(s).filter(ImageFilter.GaussianBlur(0.8))),
        ("48 px", lambda s: render_scene(s, 48)),
        ("128 px", lambda s: render_scene(s, 128)),
    ]:
        subset = scenes[:200]
        right = sum(set(check_image(transform(s))) == s.attributes for s in subset)
        print(f"  {label}: {100 * right / len(subset):.1f}% of {len(subset)} scenes")
        figures[f"exact[{label}, {len(subset)} scenes]"] = right / len(subset)
    return figures


def _speech_cases(lang: str, n: int, seed: int) -> list[tuple[list[str], int]]:
    """Captions with one attribute varied, and question-answer candidate sets."""
    rng = np.random.default_rng(seed)
    values = {"colour": list(COLOURS), "shape": SHAPES, "position": POSITIONS, "size": SIZES}
    cases = []
    for k in range(n):
        if k % 3 == 2:
            qtype = ("colour", "shape", "size", "position", "count")[k % 5]
            candidates = answer_candidates(qtype, lang)
            cases.append((candidates, int(rng.integers(len(candidates)))))
            continue
        scene = sample_scene(rng)
        field = list(values)[k % 4]
        obj = scene.objects[0]
        variants = [
            dataclasses.replace(
                scene, objects=(dataclasses.replace(obj, **{field: v}),) + scene.objects[1:]
            )
            for v in values[field]
        ]
        candidates = [describe(v, lang, k % 2) for v in variants]
        cases.append((candidates, list(values[field]).index(getattr(obj, field))))
    return cases


def bench_speech_checker(n_cases: int) -> dict:
    renderer = SpeechRenderer()
    checker = SpeechChecker(renderer=renderer)
    noise_rng = np.random.default_rng(0)
    figures = {}
    for lang in ("en", "ko"):
        cases = _speech_cases(lang, n_cases, seed=7 if lang == "en" else 8)
        single = SpeechChecker([REFERENCE_VOICES[lang][0]], renderer)  # one male voice
        hits = {"male": [0, 0], "female": [0, 0]}
        noisy_hits, single_hits = 0, [0, 0]
        start = time.perf_counter()
        for k, (candidates, truth) in enumerate(cases):
            voice = GENERATION_VOICES[lang][k % len(GENERATION_VOICES[lang])]
            wave = renderer.render(candidates[truth], voice)
            hits[voice.gender][0] += checker.pick(wave, 16000, candidates) == truth
            hits[voice.gender][1] += 1
            noise = noise_rng.normal(size=wave.shape) * np.sqrt((wave**2).mean() / 100)  # 20 dB
            noisy = (wave + noise).astype(np.float32)
            noisy_hits += checker.pick(noisy, 16000, candidates) == truth
            if voice.gender == "female":
                single_hits[0] += single.pick(wave, 16000, candidates) == truth
                single_hits[1] += 1
        seconds = time.perf_counter() - start
        total = sum(h[0] for h in hits.values())
        chance = np.mean([1 / len(c) for c, _ in cases])
        print(
            f"speech checker {lang}: {100 * total / len(cases):.1f}% of {len(cases)} "
            f"(male voices {hits['male'][0]}/{hits['male'][1]}, female "
            f"{hits['female'][0]}/{hits['female'][1]}; chance {100 * chance:.0f}%); "
            f"with white noise at 20 dB SNR: {100 * noisy_hits / len(cases):.1f}%; "
            f"one male reference voice on female speech: "
            f"{100 * single_hits[0] / single_hits[1]:.1f}%; {seconds:.0f} s"
        )
        figures[lang] = {
            "cases": len(cases),
            "right": total / len(cases),
            "right_by_gender": {g: h[0] / max(1, h[1]) for g, h in hits.items()},
            "chance": float(chance),
            "right_with_20db_noise": noisy_hits / len(cases),
            "one_male_reference_on_female_speech": single_hits[0] / max(1, single_hits[1]),
        }
    return figures


def bench_spoken_captions(n_captions: int) -> dict:
    checker = SpeechChecker()
    rng = np.random.default_rng(11)
    figures = {}
    for lang in ("en", "ko"):
        voices = GENERATION_VOICES[lang]
        correct, sizes = 0, []
        start = time.perf_counter()
        for k in range(n_captions):
            candidates = caption_candidates(sample_scene(rng), lang, style=k % 2)
            wave = checker.renderer.render(candidates[0], voices[k % len(voices)])
            correct += checker.pick(wave, 16000, candidates) == 0
            sizes.append(len(candidates))
        seconds = time.perf_counter() - start
        print(
            f"spoken captions {lang}: {100 * correct / n_captions:.1f}% of {n_captions} "
            f"(mean {np.mean(sizes):.0f} candidates); {seconds:.0f} s"
        )
        figures[lang] = {
            "captions": n_captions,
            "right": correct / n_captions,
            "mean_candidates": float(np.mean(sizes)),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--speech", type=int, default=120)
    parser.add_argument("--captions", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parts = ("generation", "image", "speech", "captions")
    parser.add_argument("--parts", nargs="+", choices=parts, default=list(parts))
    parser.add_argument(
        "--out",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    benches = {
        "generation": lambda: bench_generation(args.n),
        "image": lambda: bench_image_checker(args.scenes),
        "speech": lambda: bench_speech_checker(args.speech),
        "captions": lambda: bench_spoken_captions(args.captions),
    }
    figures = {part: benches[part]() for part in parts if part in args.parts}
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
