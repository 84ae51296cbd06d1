"""Do the shipped components generalize beyond the world's training style? Every figure of
issue 15's "Done when", on the varied world's `test` split and on its `unseen` split (voices
and drawing settings no component trains on), in one run.

Image path: scenes of the split, drawn and written as the world writes them (JPEG where the
look says so) -> image tokenizer -> image decoder at ``--steps`` steps -> the image checker:
the share of scenes read back as the true scene (95% Wilson interval), the share read as the
checker reads the original, attribute accuracy, and the checker's own figure on the originals;
and the same scenes in the classic rendering through the same path, which bounds what a
tokenizer that reads every style as the classic one can reach with this decoder. With
``--reference-image-tokenizer``, how often the codes equal the reference's on the classic
rendering of the same scene.

Speech: sentences of the split, spoken by ``--voices`` voices drawn from the split's speaking
ranges (``--clips-per-voice`` each, with the split's gain/noise/reverb/silence) -> units.
CER of a unit CTC probe (trained here on ``--probe-clips`` train-split clips of the same
tokenizer) and of the tokenizer's own CTC reading. Vocoder: resynthesis from each clip's units
in its voice, zero-shot from another clip of that voice: CER of the probe re-reading the
resynthesis against its CER on the originals (the ratio), the speech checker's pick among 1 +
4 sentences, the share of (target, other) voice pairs where the resynthesis is closer (speaker
encoder cosine) to the target's real clips, for the vocoder's named voices and zero-shot for
the split's voices. Speed: seconds per decoded image (batched) and the vocoder's real-time
factor on ``--threads`` threads.

    .venv/bin/python benchmarks/bench_generalization.py            # shipped assets, full size
    .venv/bin/python benchmarks/bench_generalization.py --parts image  # the image path only
    .venv/bin/python benchmarks/bench_generalization.py --scenes 8 --voices 2 --clips-per-voice 2 \\
        --probe-clips 16 --probe-steps 5 --out /tmp/smoke.json      # a smoke test

The figures go to ``benchmarks/bench_generalization.json`` beside this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_decoders import speech_checker_accuracy, to_pil_image

from decoders import load_decoder
from tokenizers_mm.audio import SpeechUnitTokenizer, character_error_rate, normalise_transcript
from tokenizers_mm.unit_probe import train_unit_probe
from tokenizers_mm.vision import SemanticImageTokenizer
from training.decoder_metrics import wilson_interval
from training.evaluate import attribute_accuracy, check_image
from training.toyworld.looks import as_written, classic_rendering
from training.toyworld.scenes import sample_scene
from training.toyworld.speech import SAMPLE_RATE, SpeechRenderer, Voice
from training.toyworld.spoken import spoken_clips
from training.toyworld.styles import world_style

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BATCH = 50


def _share(hits: list[bool]) -> dict:
    share = float(np.mean(hits))
    low, high = wilson_interval(share, len(hits))
    return {"share": round(share, 3), "ci95": [round(low, 3), round(high, 3)], "n": len(hits)}


def written_images(split: str, n: int, seed: int, style: str = "varied") -> list[tuple]:
    """``n`` (scene, image as written) of the split: its drawing ranges, JPEG where drawn
    (a style without looks: the classic rendering)."""
    drawing, _ = world_style(style).for_split(split)
    rng = np.random.default_rng([seed, len(split)])
    drawn = []
    for _ in range(n):
        scene = sample_scene(rng, drawing=drawing)
        drawn.append((scene, as_written(rng, scene, drawing, 64)))
    return drawn


def _through_path(args, tokenizer, decoder, images: list) -> tuple[list, float, torch.Tensor]:
    """``images`` -> codes -> decoded images; the seconds spent decoding, and the codes."""
    size = decoder.config.image_size
    decoded, seconds, all_codes = [], 0.0, []
    for i in range(0, len(images), BATCH):
        codes = tokenizer.encode(images[i : i + BATCH])
        start = time.perf_counter()
        with torch.no_grad():
            batch = decoder.sample(codes, size, size, args.steps, args.guidance, seed=i)
        seconds += time.perf_counter() - start
        decoded += [to_pil_image(image) for image in batch]
        all_codes.append(codes)
    return decoded, seconds, torch.cat(all_codes)


def bench_image_path(args: argparse.Namespace, split: str) -> dict:
    tokenizer = SemanticImageTokenizer.from_pretrained(args.image_tokenizer)
    decoder = load_decoder(args.image_decoder).eval()
    drawn = written_images(split, args.scenes, args.seed, args.style)
    decoded, seconds, written = _through_path(
        args, tokenizer, decoder, [image for _, image in drawn]
    )
    classic = [classic_rendering(scene, tokenizer.encoder.image_size) for scene, _ in drawn]
    from_classic, _, own = _through_path(args, tokenizer, decoder, classic)
    truth = [scene.attributes for scene, _ in drawn]
    read_original = [set(check_image(image)) for _, image in drawn]
    read_decoded = [set(check_image(image)) for image in decoded]
    return {
        "steps": args.steps,
        "checker_on_originals": _share([r == t for r, t in zip(read_original, truth)]),
        "same_scene": _share([r == t for r, t in zip(read_decoded, truth)]),
        "same_as_checker_reads_original": _share(
            [r == o for r, o in zip(read_decoded, read_original)]
        ),
        "attribute_accuracy": round(
            float(np.mean([attribute_accuracy(r, t) for r, t in zip(read_decoded, truth)])), 3
        ),
        # the same scenes in the classic rendering through the same path: what a perfectly
        # style-invariant tokenizer would reach with this decoder
        "same_scene_from_classic_rendering": _share(
            [set(check_image(image)) == t for image, t in zip(from_classic, truth)]
        ),
        "seconds_per_image_batched": round(seconds / len(drawn), 4),
        **_code_agreement(args, written, own, classic),
    }


def _code_agreement(args: argparse.Namespace, written, own, classic: list) -> dict:
    """With ``--reference-image-tokenizer``: the share of codes this tokenizer gives that the
    reference gives the same scene in the classic rendering, for the images as written and
    for the classic renderings themselves (1.0 there: an LM trained on the reference's codes
    reads this tokenizer's codes as its own)."""
    if not args.reference_image_tokenizer:
        return {}
    reference = SemanticImageTokenizer.from_pretrained(args.reference_image_tokenizer)
    target = torch.cat(
        [reference.encode(classic[i : i + BATCH]) for i in range(0, len(classic), BATCH)]
    )
    return {
        "codes_as_reference_reads_classic_rendering": {
            "images_as_written": round((written == target).float().mean().item(), 3),
            "classic_renderings": round((own == target).float().mean().item(), 3),
        }
    }


def train_probe(args: argparse.Namespace, tokenizer: SpeechUnitTokenizer, renderer):
    """A fresh unit CTC probe on train-split clips (as bench_speech_units trains it)."""
    voices = max(2, args.probe_clips // 4)
    clips = spoken_clips("train", voices, 4, args.seed + 1, renderer, args.style)
    clips = clips[: args.probe_clips]
    units = [(tokenizer.encode(c["wave"], SAMPLE_RATE), c["text"]) for c in clips]
    config = {"dim": 128, "layers": 2}
    return train_unit_probe(units, tokenizer.codebook_size, steps=args.probe_steps, **config)


def _cer(clips: list[dict], hypotheses: list[str]) -> float:
    refs = [normalise_transcript(c["text"]) for c in clips]
    return round(character_error_rate(refs, [normalise_transcript(h) for h in hypotheses]), 4)


@torch.no_grad()
def voice_pairs(vocoder, real: dict[str, list], units: list, speaker_of) -> dict:
    """Share of (target, other) same-language voice pairs where units resynthesised in the
    target's voice (``speaker_of(target)``) are closer to the target's real clips (centroid
    of speaker-encoder embeddings) than to the other's."""
    encoder = vocoder.speaker_encoder.eval()
    centroids = {
        voice: torch.nn.functional.normalize(
            torch.stack([encoder(w[None].float())[0] for w in waves]).mean(0), dim=0
        )
        for voice, waves in real.items()
    }
    wins = total = 0
    for lang, clip_units in units:
        voices = [v for v in centroids if v.split("+")[0] == lang]
        for target in voices:
            wave = torch.from_numpy(vocoder.decode(clip_units, speaker=speaker_of(target))[1])
            embedding = encoder(wave[None])[0]
            for other in voices:
                if other != target:
                    total += 1
                    wins += float(embedding @ centroids[target] > embedding @ centroids[other])
    return {"pairs": total, "closer_to_target": round(wins / max(total, 1), 3)}


def bench_speech(args, split: str, tokenizer, vocoder, probe, renderer) -> dict:
    clips = spoken_clips(split, args.voices, args.clips_per_voice, args.seed, renderer, args.style)
    for clip in clips:
        clip["units"] = tokenizer.encode(clip["wave"], SAMPLE_RATE)
    results = {"clips": len(clips), "voices": len({c["voice"] for c in clips})}
    if probe is not None:
        results["probe_cer"] = _cer(clips, probe.transcribe([c["units"] for c in clips]))
    results["tokenizer_ctc_cer"] = _cer(clips, [tokenizer.transcribe(c["wave"]) for c in clips])
    if vocoder is None:
        return results
    # Zero-shot resynthesis: each clip in its voice, from the voice's next clip as reference.
    by_voice: dict[str, list[dict]] = {}
    for clip in clips:
        by_voice.setdefault(clip["voice"], []).append(clip)
    start = time.perf_counter()
    for group in by_voice.values():
        for i, clip in enumerate(group):
            reference = group[(i + 1) % len(group)]["wave"].numpy()
            rate, wave = vocoder.decode(clip["units"], speaker=(SAMPLE_RATE, reference))
            clip["resynth"] = torch.from_numpy(wave)
    seconds = time.perf_counter() - start
    audio_seconds = sum(c["resynth"].numel() for c in clips) / vocoder.sample_rate
    results["vocoder_rtf"] = round(seconds / audio_seconds, 4)
    resynth_units = [tokenizer.encode(c["resynth"], vocoder.sample_rate) for c in clips]
    results["resynthesis_probe_cer"] = _cer(clips, probe.transcribe(resynth_units))
    results["resynthesis_cer_ratio"] = round(
        results["resynthesis_probe_cer"] / max(results["probe_cer"], 1e-4), 3
    )
    checker = speech_checker_accuracy(clips, args.seed, renderer, vocoder.sample_rate)
    results["speech_checker"] = checker
    half = [(c["lang"], c["units"]) for c in clips[: max(2, len(clips) // 2)]]
    real = {v: [c["wave"] for c in group] for v, group in by_voice.items()}
    references = {v: (SAMPLE_RATE, group[0]["wave"].numpy()) for v, group in by_voice.items()}
    results["zero_shot_voice"] = voice_pairs(vocoder, real, half, references.__getitem__)
    named: dict[str, list] = {}
    for name in vocoder.config.speakers:
        voice = Voice.from_id(name)
        texts = [c["text"] for c in clips if c["lang"] == voice.lang][:2]
        named[name] = [torch.from_numpy(renderer.render(t, voice).copy()) for t in texts]
    results["named_voice"] = voice_pairs(vocoder, named, half, lambda name: name)
    return results


def _components(args: argparse.Namespace) -> dict[str, str]:
    """Which component folders the figures are for (paths relative to the repo when inside)."""
    root = ASSETS.parent
    chosen = {
        "image": ("image_tokenizer", "image_decoder"),
        "speech": ("speech_tokenizer", "vocoder"),
    }
    named = [name for part in args.parts for name in chosen[part]]
    paths = {name: Path(getattr(args, name)).resolve() for name in named}
    return {n: str(p.relative_to(root) if p.is_relative_to(root) else p) for n, p in paths.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-tokenizer", default=str(ASSETS / "tokenizers" / "image"))
    parser.add_argument("--image-decoder", default=str(ASSETS / "decoders" / "image"))
    parser.add_argument("--speech-tokenizer", default=str(ASSETS / "tokenizers" / "speech"))
    parser.add_argument(
        "--vocoder",
        default=str(ASSETS / "decoders" / "vocoder"),
        help="'none': the units' figures only (a tokenizer that no vocoder is trained on yet)",
    )
    parser.add_argument(
        "--style", default="varied", help="the world whose splits are measured (e.g. classic)"
    )
    parser.add_argument("--splits", nargs="+", default=["test", "unseen"])
    parser.add_argument("--scenes", type=int, default=400, help="scenes per split")
    parser.add_argument("--steps", type=int, default=8, help="image decoder steps")
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--voices", type=int, default=20, help="voices per split")
    parser.add_argument("--clips-per-voice", type=int, default=4)
    parser.add_argument("--probe-clips", type=int, default=800)
    parser.add_argument(
        "--probe-steps", type=int, default=1500, help="0: no probe (with --vocoder none)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--reference-image-tokenizer",
        help="also report how often the image tokenizer's codes equal this one's on the same "
        "scene in the classic rendering (e.g. the original of a style-tuned tokenizer)",
    )
    parser.add_argument(
        "--parts", nargs="+", choices=("image", "speech"), default=["image", "speech"]
    )
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the figures of the parts not measured now from the --out file (e.g. re-measure "
        "speech after a new speech tokenizer ships, keeping the image figures)",
    )
    args = parser.parse_args()
    for split in args.splits:
        world_style(args.style).for_split(split)  # unknown styles and splits fail first
    if args.probe_steps == 0 and args.vocoder != "none":
        parser.error(
            "--probe-steps 0 leaves out the probe the vocoder figures need: add --vocoder none"
        )
    if args.clips_per_voice < 2:
        parser.error("--clips-per-voice must be at least 2 (one clip is the other's reference)")
    torch.set_num_threads(args.threads)
    results = {"threads": args.threads, "style": args.style, "components": _components(args)}
    if "speech" in args.parts:
        renderer = SpeechRenderer()
        tokenizer = SpeechUnitTokenizer.from_pretrained(args.speech_tokenizer).eval()
        vocoder = None if args.vocoder == "none" else load_decoder(args.vocoder).eval()
        probe = train_probe(args, tokenizer, renderer) if args.probe_steps else None
        results["probe_clips"] = args.probe_clips if probe else 0
    for split in args.splits:
        results[split] = {}
        if "image" in args.parts:
            results[split]["image_path"] = bench_image_path(args, split)
        if "speech" in args.parts:
            speech = bench_speech(args, split, tokenizer, vocoder, probe, renderer)
            results[split]["speech"] = speech
        print(json.dumps({split: results[split]}, indent=2), flush=True)
    if args.update:
        results = updated(json.loads(Path(args.out).read_text()), results)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def updated(before: dict, now: dict) -> dict:
    """``before`` with what ``now`` measured replaced: settings, components and per-split
    parts (one level deep, so a split's parts that ``now`` did not measure are kept)."""
    merged = {**before, **now}
    for key, value in now.items():
        if isinstance(value, dict) and isinstance(before.get(key), dict):
            merged[key] = {**before[key], **value}
    return merged


if __name__ == "__main__":
    main()
