"""``omni build --backbone DIR --out DIR``: an Omni pipeline folder over a pretrained causal LM.

The folder holds the extended model and the backbone's tokenizer with Omni's specials and chat
template; ``omni train lm --init OUT`` trains from it (the code tokenizers come with
``--tokenizers``, as for any run).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", required=True, help="a transformers causal-LM folder")
    parser.add_argument("--out", required=True, help="the pipeline folder to write")
    parser.add_argument("--image-codes", type=int, default=256, help="image codebook size")
    parser.add_argument("--audio-codes", type=int, default=243, help="audio codebook size")
    parser.add_argument("--image-grid", type=int, nargs=2, default=(8, 8), metavar=("ROWS", "COLS"))
    parser.add_argument(
        "--encoders",
        choices=("none", "micro"),
        default="none",
        help="continuous encoders to attach: none, or the micro ViT and Whisper encoder",
    )
    parser.add_argument("--no-mtp", action="store_true", help="build without the MTP head")
    parser.add_argument("--seed", type=int, default=0, help="seed of the appended rows")


def run(args: argparse.Namespace) -> int:
    from omni.backbones import build_pipeline
    from omni.presets import MICRO_ENCODERS

    pipeline, report = build_pipeline(
        args.backbone,
        image_codes=args.image_codes,
        audio_codes=args.audio_codes,
        image_grid=args.image_grid,
        encoders=MICRO_ENCODERS if args.encoders == "micro" else None,
        mtp_layers=0 if args.no_mtp else 1,
        seed=args.seed,
    )
    pipeline.save_pretrained(args.out)
    for line in report:
        print(line)
    print(f"wrote {args.out}")
    return 0
