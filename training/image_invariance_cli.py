"""``omni train image-invariance``: make a trained image tokenizer read the wider world's drawing
styles as it reads the classic one, keeping its codes, so the image decoder and any LM trained
on those codes need no retraining (``tokenizers_mm.vision_invariance``).

Each step draws scenes of a world style's ``train`` ranges (never its ``unseen`` ones, never a
held-out novel pair), renders each in a sampled look (JPEG where the look says so) for the
student, and the same geometry in the classic rendering (the nearest of its four backgrounds, its
noise) for the teacher."""

from __future__ import annotations

import argparse
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.cli_args import add_tuning_arguments

    add_tuning_arguments(parser, "image", str(ASSETS / "tokenizers" / "image"), batch_size=32)
    parser.add_argument(
        "--classic-share",
        type=float,
        default=0.0,
        help="share of pairs whose student image is the classic rendering itself, to hold "
        "classic images to their codes (the shipped tokenizer used 0: half its codes of classic "
        "images changed, yet it reads back 0.912 of the classic world's test scenes, as before)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from tokenizers_mm.vision import SemanticImageTokenizer
    from tokenizers_mm.vision_invariance import distil_style_invariance
    from training.toyworld.looks import styled_pairs

    if not (Path(args.init) / "config.json").is_file():
        raise ValueError(f"--init {args.init}: no saved image tokenizer there")
    torch.set_num_threads(args.threads)
    tokenizer = SemanticImageTokenizer.from_pretrained(args.init)
    make_pairs = styled_pairs(args.style, tokenizer.encoder.image_size, args.classic_share)
    distil_style_invariance(
        tokenizer, make_pairs, args.out, args.steps, args.batch_size, args.lr, args.seed
    )
    print(f"style-invariant image tokenizer saved to {args.out}")
    return 0
