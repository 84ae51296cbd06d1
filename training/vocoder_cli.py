"""``omni train vocoder``: train the Unit-BigVGAN (speaker encoder, then generator) on voiced
clips turned into units by a trained speech unit tokenizer.

The clips are either a sample manifest's (``--data``; every voice is named), or spoken by the
toy world's generator (``--world STYLE``): ``--voices`` voices drawn from the style's train
ranges, each saying ``--clips-per-voice`` sentences with the style's effects, for the speaker
encoder to learn many voices (zero-shot references), plus ``--named-clips`` clips of the classic
voices, the named table. There the units come from each clip as heard and the generator learns
to say its clean rendering."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder with manifest.jsonl + media/")
    source.add_argument("--world", metavar="STYLE", help="speak the clips in this world style")
    parser.add_argument("--voices", type=int, default=300, help="with --world: drawn voices")
    parser.add_argument("--clips-per-voice", type=int, default=6, help="with --world")
    parser.add_argument(
        "--named-clips", type=int, default=200, help="with --world: clips of the classic voices"
    )
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


def _manifest_clips(args: argparse.Namespace, sample_rate: int):
    """(wave, voice, target) of ``--data``'s voiced clips (no separate target), and the
    named voices (None: all)."""
    import torch

    from omni.common.audio import read_audio
    from omni.common.manifest import media_segments

    segments = [(p, s) for p, s, _ in media_segments(args.data, "audio") if s.get("voice")]
    if args.max_clips:
        segments = segments[: args.max_clips]
    clips = []
    for path, segment in segments:
        wave, rate = read_audio(path)
        if rate != sample_rate:
            raise ValueError(f"{path} is {rate} Hz; the vocoder trains on {sample_rate} Hz")
        clips.append((torch.from_numpy(wave), segment["voice"], None))
    return clips, None


def _world_clips(args: argparse.Namespace, sample_rate: int):
    """(wave, voice, clean target) of ``--world``'s drawn voices and of the classic voices,
    and the named voices (the classic ones)."""
    from training.toyworld.speech import SAMPLE_RATE, SpeechRenderer
    from training.toyworld.spoken import spoken_clips

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the world speaks at {SAMPLE_RATE} Hz; the vocoder runs at {sample_rate}")
    renderer = SpeechRenderer()
    drawn = spoken_clips(
        "train", args.voices, args.clips_per_voice, args.seed, renderer, args.world
    )
    classic = spoken_clips("train", args.named_clips, 1, args.seed + 1, renderer, "classic")
    clips = [(c["wave"], c["voice"], c["clean"]) for c in drawn + classic]
    return clips, sorted({c["voice"] for c in classic})


def _check_world_arguments(args: argparse.Namespace) -> None:
    from training.toyworld.styles import world_style

    if args.voices < 2 or args.clips_per_voice < 2 or args.named_clips < 1:
        raise ValueError(
            "--world needs --voices and --clips-per-voice of at least 2 (a voice's reference is "
            f"another of its clips) and --named-clips of at least 1, got {args.voices}, "
            f"{args.clips_per_voice}, {args.named_clips}"
        )
    _, speaking = world_style(args.world).for_split("train")
    if speaking.voices is not None:
        raise ValueError(f"style {args.world!r} speaks only the classic voices; use varied")


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
    from tokenizers_mm.audio import SpeechUnitTokenizer

    if args.init_tokenizer and not args.init_from:
        raise ValueError("--init-tokenizer needs --init-from (the vocoder trained on its units)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.world:
        _check_world_arguments(args)
    tokenizer = SpeechUnitTokenizer.from_pretrained(args.tokenizer)
    config = VocoderConfig(num_units=tokenizer.codebook_size)
    if tokenizer.codes_per_second != config.unit_rate:
        raise ValueError(
            f"the vocoder expects {config.unit_rate} units/s, the tokenizer gives "
            f"{tokenizer.codes_per_second}"
        )
    old_tokenizer = args.init_tokenizer and SpeechUnitTokenizer.from_pretrained(args.init_tokenizer)
    read = _world_clips if args.world else _manifest_clips
    voiced, named = read(args, config.sample_rate)
    clips, old_units = [], []
    for wave, voice, target in tqdm(voiced, desc="tokenize speech"):
        units = tokenizer.encode(wave, config.sample_rate)
        clips.append(SpeechClip(wave, units, voice, target))
        if old_tokenizer:
            old_units.append(old_tokenizer.encode(wave, config.sample_rate))
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
        named=named,
    )
    train_vocoder(vocoder, clips, train)
    print(
        f"vocoder saved to {args.out}/vocoder ({len(clips)} clips of {len(speakers)} voices; "
        f"named: {', '.join(vocoder.config.speakers)})"
    )
    return 0
