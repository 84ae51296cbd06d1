"""``omni train tokenizer --kind image|speech|encodec|bpe|superbpe``: one command for every
tokenizer.

``--data`` is a toy-world manifest (``manifest.jsonl`` or the folder holding it; its
``--split`` samples are used; a record without a split is in train) for every kind; the text kinds also take plain text files or
folders of ``*.txt`` / ``*.md``. The trained tokenizer is saved to ``--out`` with
``save_pretrained``; the signal kinds resume from ``--out/checkpoint``, and the image and speech
kinds can start from a saved tokenizer (``--init``) to retrain it on other data.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KINDS = ("image", "speech", "encodec", "bpe", "superbpe")
TEXT_SUFFIXES = (".txt", ".md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", required=True, choices=KINDS, help="which tokenizer to train")
    parser.add_argument("--data", required=True, nargs="+", help="manifest, or text files/folders")
    parser.add_argument("--out", required=True, help="folder to save the trained tokenizer to")
    parser.add_argument("--split", default="train", help="manifest split to train on")
    parser.add_argument("--steps", type=int, default=None, help="training steps (signal kinds)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (signal kinds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=32768, help="bpe / superbpe")
    parser.add_argument(
        "--transition-vocab-size", type=int, default=None, help="superbpe (default 75%% of vocab)"
    )
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (signal kinds)")
    parser.add_argument(
        "--init",
        default=None,
        help="image / speech: start from this saved tokenizer's weights (e.g. the shipped one, "
        "to retrain it on a wider world) instead of a fresh one",
    )
    parser.add_argument("--encoder", default=None, help="image: a pretrained vision encoder folder")
    parser.add_argument("--full", action="store_true", help="encodec: full size, not micro")
    parser.add_argument("--bandwidth", type=float, default=6.0, help="encodec kbps")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.init and args.kind not in ("image", "speech"):
        raise ValueError(f"--init starts an image or speech tokenizer, not {args.kind!r}")
    if args.kind in ("bpe", "superbpe"):
        return _train_text(args, out)
    from omni.common.audio import read_audio

    chosen = (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr))
    options = {k: v for k, v in chosen if v}
    if args.init and args.encoder:
        raise ValueError("--init brings its own frozen encoder; leave out --encoder")
    if args.init and not (Path(args.init) / "config.json").is_file():
        raise ValueError(f"--init {args.init}: no saved tokenizer there (config.json is missing)")
    if args.kind == "image":
        from tokenizers_mm.vision import SemanticImageTokenizer, train_image_tokenizer

        images = [_load_image(path) for path, _ in _segments(args.data, args.split, "image")]
        _require(images, "images", args)
        if args.init:
            options["tokenizer"] = SemanticImageTokenizer.from_pretrained(args.init)
        train_image_tokenizer(out, images, seed=args.seed, encoder=args.encoder, **options)
    elif args.kind == "speech":
        from tokenizers_mm.audio import SpeechUnitTokenizer, train_speech_tokenizer

        clips = [
            (*read_audio(path), text)
            for path, text in _segments(args.data, args.split, "audio")
            if text
        ]
        _require(clips, "transcribed audio clips", args)
        if args.init:
            options["tokenizer"] = SpeechUnitTokenizer.from_pretrained(args.init)
        train_speech_tokenizer(out, clips, seed=args.seed, **options)
    else:
        from tokenizers_mm.encodec import (
            EncodecConfig,
            EncodecTokenizer,
            EncodecTrainConfig,
            train_encodec,
        )

        clips = [read_audio(path) for path, _ in _segments(args.data, args.split, "audio")]
        _require(clips, "audio clips", args)
        config = EncodecConfig() if args.full else EncodecConfig.micro()
        config = dataclasses.replace(config, bandwidth=args.bandwidth)
        train_encodec(
            EncodecTokenizer(config), clips, EncodecTrainConfig(seed=args.seed, **options), out
        )
    print(f"saved {args.kind} tokenizer to {out}")
    return 0


def _train_text(args: argparse.Namespace, out: Path) -> int:
    from tokenizers_mm.text import superword_share, train_bpe, train_superbpe

    texts = list(_texts(args.data, args.split))
    _require(texts, "texts", args)
    if args.kind == "bpe":
        tokenizer = train_bpe(texts, args.vocab_size, show_progress=True)
    else:
        tokenizer = train_superbpe(
            texts, args.vocab_size, args.transition_vocab_size, show_progress=True
        )
        print(f"superword share of the vocabulary: {superword_share(tokenizer):.1%}")
    tokenizer.save_pretrained(out)
    print(f"saved {args.kind} tokenizer ({len(tokenizer)} tokens) to {out}")
    return 0


def _require(items: list, what: str, args: argparse.Namespace) -> None:
    if not items:
        raise ValueError(f"no {what} found in {' '.join(args.data)} (split {args.split!r})")


def _segments(data: list[str], split: str, kind: str) -> Iterator[tuple[Path, str | None]]:
    """Media path and transcript (for audio: the segment's text, else what the sample says)
    of every ``kind`` segment of ``split`` in every manifest."""
    from omni.common.manifest import media_segments

    for item in data:
        for path, segment, record in media_segments(item, kind, (split,), distinct=False):
            meta = record.get("meta", {})
            yield path, segment.get("text") or meta.get("text") or meta.get("question")


def _texts(data: list[str], split: str) -> Iterator[str]:
    from omni.common.manifest import split_records

    for item in data:
        path = Path(item)
        if path.name.endswith(".jsonl") or (path / "manifest.jsonl").is_file():
            for _, record in split_records(item, (split,)):
                for turn in record.get("turns", []):
                    for segment in turn.get("segments", []):
                        if segment.get("type") == "text":
                            yield segment["text"]
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.suffix in TEXT_SUFFIXES and file.is_file():
                    yield file.read_text(encoding="utf-8", errors="replace")
        elif path.is_file():
            yield path.read_text(encoding="utf-8", errors="replace")
        else:
            raise ValueError(f"text data {item} does not exist")


def _load_image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.copy()
