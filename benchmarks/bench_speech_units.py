"""Do the speech units carry content? Train the speech unit tokenizer on toy-world espeak speech,
then a fresh CTC probe on its frozen unit ids, and report the probe's character error rate on
held-out speech: sentences about held-out (colour, shape) pairs, spoken by the training voices
and by voices never heard in training.

    .venv/bin/python benchmarks/bench_speech_units.py --out runs/speech_units --steps 1500

Training speech: 600 scenes in the four training voices plus ``--extra-scenes`` more in the
same voice variants at random pitches and speeds (never a held-out sentence). The probe is an
embedding + 2-layer BiLSTM (128 wide) + CTC reader trained on the units of all training clips
in length-sorted batches (``--probe-*`` options; ``--probe-grid`` also gives it each id's FSQ
grid coordinates). Everything is cached and resumable under ``--out`` (rendered corpus,
tokenizer checkpoints); results go to ``--out/results{--tag}.json``. ``--assets`` copies the
trained tokenizer there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tokenizers_mm.audio import (
    SpeechUnitTokenizer,
    character_error_rate,
    normalise_transcript,
    train_speech_tokenizer,
)
from tokenizers_mm.unit_probe import train_unit_probe
from training.toyworld.language import QUESTION_TYPES, ask, describe
from training.toyworld.scenes import sample_scene
from training.toyworld.speech import (
    GENERATION_VOICES,
    REFERENCE_VOICES,
    SAMPLE_RATE,
    SpeechRenderer,
    Voice,
)

Clip = tuple[np.ndarray, str, str, str]  # waveform, transcript, lang, voice group


def scene_texts(rng: np.random.Generator, novel: bool, lang: str) -> list[str]:
    """A caption and one question/answer pair about a fresh scene."""
    scene = sample_scene(rng, novel=novel)
    qtype = QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
    return [describe(scene, lang, int(rng.integers(2))), *ask(scene, qtype, lang)]


def render_corpus(n_scenes: int, novel: bool, voices: dict, group: str, seed: int) -> list[Clip]:
    from tqdm import tqdm

    rng, renderer, clips = np.random.default_rng(seed), SpeechRenderer(), []
    for index in tqdm(range(n_scenes), desc=f"render {group}"):
        lang = ("en", "ko")[index % 2]
        for text in scene_texts(rng, novel, lang):
            voice = voices[lang][int(rng.integers(len(voices[lang])))]
            clips.append((renderer.render(text, voice), text, lang, group))
    return clips


def jittered_voice(rng: np.random.Generator, voices: dict, lang: str) -> Voice:
    """A training voice variant with a fresh pitch and speed (never a reference variant)."""
    base = voices[lang][int(rng.integers(len(voices[lang])))]
    return Voice(lang, base.variant, int(rng.integers(25, 80)), int(rng.integers(135, 190)))


def render_extra(n_scenes: int, exclude: set[str], seed: int) -> list[Clip]:
    """More training speech: fresh non-novel scenes spoken by the training voice variants at
    random pitches and speeds; sentences in ``exclude`` (the held-out set) are skipped."""
    from tqdm import tqdm

    rng, renderer, clips = np.random.default_rng(seed), SpeechRenderer(), []
    for index in tqdm(range(n_scenes), desc="render extra"):
        lang = ("en", "ko")[index % 2]
        for text in scene_texts(rng, False, lang):
            voice = jittered_voice(rng, GENERATION_VOICES, lang)
            if normalise_transcript(text) not in exclude:
                clips.append((renderer.render(text, voice), text, lang, "seen"))
    return clips


def save_corpus(path: Path, clips: list[Clip]) -> None:
    pcm = [
        torch.from_numpy(np.round(np.clip(w, -1, 1) * 32767).astype(np.int16)) for w, *_ in clips
    ]
    lengths = torch.tensor([len(p) for p in pcm])
    save_file(
        {"pcm": torch.cat(pcm), "lengths": lengths},
        str(path),
        metadata={"clips": json.dumps([c[1:] for c in clips])},
    )


def load_corpus(path: Path) -> list[Clip]:
    from safetensors import safe_open

    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as handle:
        meta = json.loads(handle.metadata()["clips"])
    waves = torch.split(tensors["pcm"].float() / 32767, tensors["lengths"].tolist())
    return [(w.numpy(), *m) for w, m in zip(waves, meta)]


def corpus(out: Path, name: str, build) -> list[Clip]:
    path = out / f"corpus_{name}.safetensors"
    if not path.is_file():
        save_corpus(path, build())
    return load_corpus(path)


@torch.no_grad()
def unit_ids(tokenizer: SpeechUnitTokenizer, clips: list[Clip]) -> list[tuple[torch.Tensor, str]]:
    """(frozen unit ids, transcript) per clip, encoded in batches of 16."""
    pairs = []
    for start in range(0, len(clips), 16):
        batch = clips[start : start + 16]
        _, units = tokenizer.quantise([w for w, *_ in batch], SAMPLE_RATE)
        pairs += [(u, text) for u, (_, text, *_) in zip(units, batch)]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/speech_units")
    parser.add_argument(
        "--results",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    parser.add_argument("--train-scenes", type=int, default=600)
    parser.add_argument("--test-scenes", type=int, default=40)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--extra-scenes", type=int, default=600, help="jittered-voice scenes")
    parser.add_argument("--probe-steps", type=int, default=1600)
    parser.add_argument("--probe-lr", type=float, default=3e-3)
    parser.add_argument("--probe-dropout", type=float, default=0.0)
    parser.add_argument("--probe-substitute", type=float, default=0.0)
    parser.add_argument(
        "--probe-grid", action="store_true", help="the probe also sees FSQ grid coordinates"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--assets", default=None, help="copy the trained tokenizer here")
    parser.add_argument("--tag", default="", help="write results{tag}.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train = corpus(
        out, "train", lambda: render_corpus(args.train_scenes, False, GENERATION_VOICES, "seen", 0)
    )
    train_texts = {normalise_transcript(text) for _, text, *_ in train}
    test = corpus(
        out,
        "test",
        lambda: (
            render_corpus(args.test_scenes, True, GENERATION_VOICES, "seen voices", 1)
            + render_corpus(args.test_scenes, True, REFERENCE_VOICES, "unseen voices", 2)
        ),
    )
    test = [clip for clip in test if normalise_transcript(clip[1]) not in train_texts]
    test_texts = {normalise_transcript(clip[1]) for clip in test}
    if args.extra_scenes:
        train += corpus(out, "extra", lambda: render_extra(args.extra_scenes, test_texts, 3))
    print(f"{len(train)} training clips, {len(test)} held-out clips (sentences not in training)")

    start, trained = time.perf_counter(), False
    if (out / "tokenizer" / "model.safetensors").is_file():
        tokenizer = SpeechUnitTokenizer.from_pretrained(out / "tokenizer")
    else:
        clips = [(w, SAMPLE_RATE, text) for w, text, *_ in train]
        tokenizer = train_speech_tokenizer(out / "tokenizer", clips, args.steps, lr=args.lr)
        trained = True
    train_seconds = time.perf_counter() - start if trained else None

    units = {name: unit_ids(tokenizer, clips) for name, clips in (("train", train), ("test", test))}
    probe_config = {
        "dim": 128,
        "layers": 2,
        "dropout": args.probe_dropout,
        "substitute": args.probe_substitute,
        "levels": tokenizer.levels if args.probe_grid else None,
    }
    probe = train_unit_probe(
        units["train"],
        tokenizer.codebook_size,
        steps=args.probe_steps,
        lr=args.probe_lr,
        **probe_config,
    )
    hypotheses = probe.transcribe([u for u, _ in units["test"]])
    own = [tokenizer.transcribe(w, SAMPLE_RATE) for w, *_ in test]

    results = {
        "codebook_size": tokenizer.codebook_size,
        "codes_per_second": tokenizer.codes_per_second,
        "tokenizer_train_seconds": train_seconds and round(train_seconds, 1),
        "probe": {**probe_config, "steps": args.probe_steps, "lr": args.probe_lr},
        "train_clips": len(train),
        "test_clips": len(test),
        "units_used_on_test": int(torch.cat([u for u, _ in units["test"]]).unique().numel()),
    }
    groups = {
        "all": lambda c: True,
        **{f"lang={lang}": (lambda c, lang=lang: c[2] == lang) for lang in ("en", "ko")},
        **{g: (lambda c, g=g: c[3] == g) for g in ("seen voices", "unseen voices")},
    }
    for name, keep in groups.items():
        index = [i for i, clip in enumerate(test) if keep(clip)]
        refs = [normalise_transcript(test[i][1]) for i in index]
        results[f"probe_cer[{name}]"] = round(
            character_error_rate(refs, [normalise_transcript(hypotheses[i]) for i in index]), 4
        )
        results[f"tokenizer_ctc_cer[{name}]"] = round(
            character_error_rate(refs, [normalise_transcript(own[i]) for i in index]), 4
        )
    for i in range(0, len(test), max(1, len(test) // 6)):
        print(f"  ref {test[i][1]!r}\n  hyp {hypotheses[i]!r}")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    (out / f"results{args.tag}.json").write_text(text)
    Path(args.results).write_text(text)
    if args.assets:
        tokenizer.save_pretrained(args.assets)
        shutil.copy(out / f"results{args.tag}.json", Path(args.assets) / "benchmark.json")


if __name__ == "__main__":
    main()
