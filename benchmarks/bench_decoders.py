"""How well do codes come back as pixels and speech? Held-out toy-world data, trained decoders.

Image decoder (``--image-decoder`` + ``--image-tokenizer``): new scenes -> codes -> decoded at
4 / 8 / 20 steps; the world's image checker reads attributes from the original and from the
decoded image: share of scenes where it reads exactly the same set (with its 95% interval),
mean attribute accuracy, and seconds per image (batched and one at a time).

Vocoder (``--vocoder`` + ``--speech-tokenizer``): new captions spoken by the generation voices
-> units -> resynthesised with the clip's named voice. Mel-cepstral distortion (frame-aligned,
c1..c12 of the log mel amplitude on the real-cepstrum scale, so values land in the usual
few-dB range) against Griffin-Lim from the mel the same units give (each unit's mean log mel
in the clip's voice, over ``--table-clips`` other sentences: the like-for-like baseline; with
the 95% interval of the per-clip difference) and from the clip's true mel (an oracle holding
the envelope units lack; 100 Hz frames, and 25 Hz frames: the unit rate); the speech
checker's pick among 1 + 4 candidate sentences for originals and for resyntheses; voice
similarity (resynthesis with voice A is closer by speaker-encoder cosine to A's real clips than
to voice B's, for every same-language pair); streaming vs whole RMS difference; real-time factor.

    .venv/bin/python benchmarks/bench_decoders.py --image-decoder assets/decoders/image \\
        --image-tokenizer assets/tokenizers/image --vocoder assets/decoders/vocoder \\
        --speech-tokenizer assets/tokenizers/speech

The figures go to ``benchmarks/bench_decoders.json`` beside this script (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torchaudio

from decoders import load_decoder
from training.decoder_metrics import (
    mcd,
    true_griffin_lim,
    unit_griffin_lim,
    unit_mel_table,
    wilson_interval,
)
from training.evaluate import SpeechChecker, attribute_accuracy, check_image
from training.toyworld.language import describe
from training.toyworld.scenes import render_scene, sample_scene
from training.toyworld.speech import GENERATION_VOICES, SAMPLE_RATE, SpeechRenderer


def bench_images(args: argparse.Namespace) -> dict:
    from tokenizers_mm.vision import SemanticImageTokenizer

    decoder = load_decoder(args.image_decoder)
    tokenizer = SemanticImageTokenizer.from_pretrained(args.image_tokenizer)
    rng = np.random.default_rng(args.seed)
    originals = [render_scene(sample_scene(rng), 64) for _ in range(args.images)]
    codes = tokenizer.encode(originals)
    expected = [check_image(image) for image in originals]
    results = {"images": args.images, "guidance": args.guidance}
    for steps in (4, 8, 20):
        start = time.perf_counter()
        decoded = []
        for i in range(0, args.images, 50):
            batch = decoder.sample(codes[i : i + 50], 64, 64, steps, args.guidance, seed=i)
            decoded += [to_pil_image(image) for image in batch]
        batched = (time.perf_counter() - start) / args.images
        start = time.perf_counter()
        for i in range(3):
            decoder.decode(codes[i], steps=steps, guidance=args.guidance, seed=i)
        single = (time.perf_counter() - start) / 3
        read = [check_image(image) for image in decoded]
        same = np.mean([sorted(a) == sorted(b) for a, b in zip(read, expected)])
        accuracy = np.mean([attribute_accuracy(a, b) for a, b in zip(read, expected)])
        results[f"steps_{steps}"] = {
            "same_attributes": round(float(same), 3),
            "same_attributes_ci95": [round(x, 3) for x in wilson_interval(same, args.images)],
            "attribute_accuracy": round(float(accuracy), 3),
            "seconds_per_image_batched": round(batched, 3),
            "seconds_per_image_single": round(single, 3),
        }
        print(steps, results[f"steps_{steps}"], flush=True)
        if args.save_images:
            folder = Path(args.save_images)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(8):
                originals[i].save(folder / f"{i}_original.png")
                decoded[i].save(folder / f"{i}_steps{steps}.png")
    return results


def to_pil_image(image: torch.Tensor):
    from decoders.vision import to_pil

    return to_pil(image)


def bench_vocoder(args: argparse.Namespace) -> dict:
    from tokenizers_mm.audio import SpeechUnitTokenizer

    vocoder = load_decoder(args.vocoder)
    tokenizer = SpeechUnitTokenizer.from_pretrained(args.speech_tokenizer)
    hop = SAMPLE_RATE // vocoder.config.unit_rate  # world-rate samples per unit
    rate = vocoder.sample_rate  # resyntheses stay at the vocoder's rate; metrics resample
    renderer = SpeechRenderer()
    clips = spoken_clips(args.clips, args.seed + 1, renderer, tokenizer, hop)
    # Other sentences in the same voices, for the unit -> mel table of the Griffin-Lim baseline.
    held_out = {clip["text"] for clip in clips}
    table_clips = [
        clip
        for clip in spoken_clips(args.table_clips, args.seed + 2, renderer, tokenizer, hop)
        if clip["text"] not in held_out
    ]
    table = unit_mel_table(table_clips, tokenizer.codebook_size, hop)
    start = time.perf_counter()
    for clip in clips:
        clip["resynth"] = torch.from_numpy(vocoder.decode(clip["units"], speaker=clip["voice"])[1])
    seconds = time.perf_counter() - start
    audio_seconds = sum(c["wave"].numel() for c in clips) / SAMPLE_RATE
    results = {"clips": len(clips), "audio_seconds": round(audio_seconds, 1)}
    results["rtf"] = round(seconds / audio_seconds, 4)
    ours = np.array([mcd(c["wave"], c["resynth"], SAMPLE_RATE, rate) for c in clips])
    baseline = np.array([mcd(c["wave"], unit_griffin_lim(c, table, hop)) for c in clips])
    gap = ours - baseline  # paired: the same clips, so clip difficulty cancels
    half = 1.96 * gap.std(ddof=1) / math.sqrt(len(gap)) if len(gap) > 1 else float("nan")
    results["mcd_db"] = {
        "vocoder_from_units": round(float(ours.mean()), 2),
        "griffin_lim_unit_mel_25hz": round(float(baseline.mean()), 2),
        "vocoder_minus_unit_mel_ci95": [round(float(gap.mean() + d), 2) for d in (-half, half)],
        "clips_vocoder_better": round(float((gap < 0).mean()), 3),
        "griffin_lim_true_mel_100hz": round(
            float(np.mean([mcd(c["wave"], true_griffin_lim(c["wave"], 160)) for c in clips])), 2
        ),
        "griffin_lim_true_mel_25hz": round(
            float(np.mean([mcd(c["wave"], true_griffin_lim(c["wave"], hop)) for c in clips])), 2
        ),
        "unit_mel_table_clips": len(table_clips),
    }
    print(results, flush=True)
    results["speech_checker"] = speech_checker_accuracy(clips, args.seed, renderer, rate)
    print(results["speech_checker"], flush=True)
    results["voice_similarity"] = voice_similarity(vocoder, clips)
    print(results["voice_similarity"], flush=True)
    results["streaming"] = streaming(vocoder, clips)
    print(results["streaming"], flush=True)
    return results


def spoken_clips(count: int, seed: int, renderer: SpeechRenderer, tokenizer, hop: int) -> list:
    """``count`` new captions, languages alternating, spoken by the generation voices in turn,
    with their units; each wave cut to a whole number of units."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(count):
        lang = ("en", "ko")[i % 2]
        voice = GENERATION_VOICES[lang][i // 2 % len(GENERATION_VOICES[lang])]
        text = describe(sample_scene(rng), lang, int(rng.integers(2)))
        wave = torch.from_numpy(renderer.render(text, voice).copy())
        units = tokenizer.encode(wave, SAMPLE_RATE)
        frames = min(units.numel(), wave.numel() // hop)
        clips.append({"lang": lang, "voice": voice.id, "text": text,
                      "wave": wave[: frames * hop], "units": units[:frames]})  # fmt: skip
    return clips


def speech_checker_accuracy(
    clips: list[dict], seed: int, renderer: SpeechRenderer, rate: int = SAMPLE_RATE
) -> dict:
    """Right pick among the clip's sentence and 4 other held-out sentences of its language."""
    checker = SpeechChecker(renderer=renderer)
    chooser = random.Random(seed)
    hits = {"original": 0, "resynthesised": 0}
    for clip in clips:
        pool = sorted({c["text"] for c in clips if c["lang"] == clip["lang"]} - {clip["text"]})
        candidates = [clip["text"], *chooser.sample(pool, min(4, len(pool)))]
        for key, wave, sr in (
            ("original", clip["wave"], SAMPLE_RATE),
            ("resynthesised", clip["resynth"], rate),
        ):
            hits[key] += checker.pick(wave.numpy(), sr, candidates) == 0
    return {k: round(v / len(clips), 3) for k, v in hits.items()} | {"candidates": 5}


@torch.no_grad()
def voice_similarity(vocoder, clips: list[dict]) -> dict:
    """For each clip and each same-language voice A (as the target) vs every other voice B:
    is the resynthesis with A closer to A's real clips (mean embedding) than to B's?"""
    encoder = vocoder.speaker_encoder.eval()
    real = {}
    for clip in clips:
        wave = torchaudio.functional.resample(clip["wave"], SAMPLE_RATE, vocoder.sample_rate)
        real.setdefault(clip["voice"], []).append(encoder(wave[None])[0])
    centroids = {
        v: torch.nn.functional.normalize(torch.stack(e).mean(0), dim=0) for v, e in real.items()
    }
    wins = total = 0
    for clip in clips[: max(8, len(clips) // 2)]:
        voices = [v for v in centroids if v.split("+")[0] == clip["lang"]]
        for target in voices:
            wave = torch.from_numpy(vocoder.decode(clip["units"], speaker=target)[1])
            embedding = encoder(wave[None])[0]
            for other in voices:
                if other != target:
                    total += 1
                    wins += float(embedding @ centroids[target]) > float(
                        embedding @ centroids[other]
                    )
    return {"pairs": total, "closer_to_target": round(wins / max(total, 1), 3)}


def streaming(vocoder, clips: list[dict], chunk: int = 10) -> dict:
    """RMS difference of chunked vs whole synthesis, and the first chunk's latency."""
    diffs, first = [], []
    for clip in clips[:10]:
        units = clip["units"]
        start = time.perf_counter()
        pieces = []
        for piece in vocoder.stream(
            (units[i : i + chunk] for i in range(0, units.numel(), chunk)), clip["voice"]
        ):
            if not pieces:
                first.append(time.perf_counter() - start)
            pieces.append(piece)
        streamed = np.concatenate(pieces)
        diffs.append(float(np.sqrt(np.mean((streamed - clip["resynth"].numpy()) ** 2))))
    return {
        "chunk_units": chunk,
        "max_rms_diff": max(diffs),
        "first_chunk_seconds": round(float(np.mean(first)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-decoder")
    parser.add_argument("--image-tokenizer")
    parser.add_argument("--vocoder")
    parser.add_argument("--speech-tokenizer")
    parser.add_argument(
        "--images", type=int, default=400, help="held-out scenes (400: a 95%% interval of +-3%%)"
    )
    parser.add_argument("--clips", type=int, default=80)
    parser.add_argument(
        "--table-clips", type=int, default=400, help="clips for the unit -> mel baseline table"
    )
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--save-images", help="folder for a few original/decoded pairs")
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"threads": args.threads}
    if args.image_decoder:
        results["image_decoder"] = bench_images(args)
    if args.vocoder:
        results["vocoder"] = bench_vocoder(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
