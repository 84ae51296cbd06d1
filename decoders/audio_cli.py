"""``omni train vocoder``: train the Unit-BigVGAN (speaker encoder, then generator) on the voiced
clips of a sample manifest, turned into units by a trained speech unit tokenizer."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder with manifest.jsonl + media/")
    parser.add_argument("--tokenizer", required=True, help="saved speech unit tokenizer folder")
    parser.add_argument("--out", default="runs/vocoder", help="checkpoints + vocoder/")
    parser.add_argument("--steps", type=int, default=3000, help="total steps (both phases)")
    parser.add_argument("--speaker-steps", type=int, default=150, help="speaker-encoder phase")
    parser.add_argument("--gan-start", type=int, default=600, help="mel-only generator steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--lr", type=float, default=2e-4, help="generator / discriminator lr (also on resume)"
    )
    parser.add_argument(
        "--decay-steps",
        type=int,
        default=0,
        help="last steps over which that lr falls linearly to 0 (0: constant)",
    )
    parser.add_argument("--init-from", help="saved vocoder to warm-start from (matching weights)")
    parser.add_argument(
        "--init-tokenizer",
        help="the speech tokenizer whose units --init-from was trained on: when --tokenizer is "
        "a retrained one, each new unit's embedding starts from the old units it co-occurs with",
    )
    parser.add_argument("--max-clips", type=int, default=0, help="use at most this many (0: all)")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="steps between saves")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from decoders.audio import SpeakerEncoderConfig, UnitVocoder, VocoderConfig
    from decoders.audio_train import (
        SpeechClip,
        VocoderTrainConfig,
        remap_unit_embeddings,
        train_vocoder,
        warm_start,
    )
    from omni.common.audio import read_audio
    from omni.common.manifest import media_segments
    from tokenizers_mm.audio import SpeechUnitTokenizer

    if args.init_tokenizer and not args.init_from:
        raise ValueError("--init-tokenizer needs --init-from (the vocoder trained on its units)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    segments = [(p, s) for p, s, _ in media_segments(args.data, "audio") if s.get("voice")]
    if args.max_clips:
        segments = segments[: args.max_clips]
    tokenizer = SpeechUnitTokenizer.from_pretrained(args.tokenizer)
    config = VocoderConfig(num_units=tokenizer.codebook_size)
    if tokenizer.codes_per_second != config.unit_rate:
        raise ValueError(
            f"the vocoder expects {config.unit_rate} units/s, the tokenizer gives "
            f"{tokenizer.codes_per_second}"
        )
    old_tokenizer = args.init_tokenizer and SpeechUnitTokenizer.from_pretrained(args.init_tokenizer)
    clips, old_units = [], []
    for path, segment in tqdm(segments, desc="tokenize speech"):
        wave, rate = read_audio(path)
        if rate != config.sample_rate:
            raise ValueError(f"{path} is {rate} Hz; the vocoder trains on {config.sample_rate} Hz")
        wave = torch.from_numpy(wave)
        clips.append(SpeechClip(wave, tokenizer.encode(wave, rate), segment["voice"]))
        if old_tokenizer:
            old_units.append(old_tokenizer.encode(wave, rate))
    speakers = sorted({clip.speaker for clip in clips})
    config.speaker_encoder = SpeakerEncoderConfig(num_speakers=len(speakers))
    vocoder = UnitVocoder(config)
    speaker_steps = args.speaker_steps
    if args.init_from:
        source = UnitVocoder.from_pretrained(args.init_from)
        fresh = warm_start(vocoder, source)
        if not any(name.startswith("speaker_encoder.") for name in fresh):
            speaker_steps = 0  # the source's speaker encoder already knows these voices
        print(f"warm start from {args.init_from}; fresh: {', '.join(fresh) or 'nothing'}")
        if old_tokenizer:
            if old_tokenizer.codebook_size != source.config.num_units:
                raise ValueError(
                    f"--init-tokenizer has {old_tokenizer.codebook_size} units, the --init-from "
                    f"vocoder {source.config.num_units}"
                )
            pairs = [(clip.units, old) for clip, old in zip(clips, old_units)]
            purity = remap_unit_embeddings(vocoder, source, pairs)
            print(f"unit embeddings remapped from the old units (purity {purity:.3f})")
    train = VocoderTrainConfig(
        output=args.out,
        steps=args.steps,
        speaker_steps=speaker_steps,
        gan_start=args.gan_start,
        batch_size=args.batch_size,
        lr=args.lr,
        decay_steps=args.decay_steps,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    train_vocoder(vocoder, clips, train)
    print(
        f"vocoder saved to {args.out}/vocoder ({len(clips)} clips, voices: {', '.join(speakers)})"
    )
    return 0
