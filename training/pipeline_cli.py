"""``omni pipeline assemble``: join a trained LM folder with code tokenizers and decoders into
one pipeline folder that ``omni.load`` loads (``training.assemble``)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("assemble",), help="what to do with a pipeline")
    parser.add_argument("--lm", required=True, help="trained LM folder (omni train lm's final)")
    parser.add_argument("--out", required=True, help="the pipeline folder to write")
    parser.add_argument(
        "--tokenizers", nargs="*", default=[], metavar="MODALITY=FOLDER", help="image=, audio="
    )
    parser.add_argument(
        "--decoders", nargs="*", default=[], metavar="MODALITY=FOLDER", help="image=, audio="
    )
    parser.add_argument(
        "--speculative-default",
        choices=("on", "off"),
        default=None,
        help="whether omni.generate drafts with MTP unless told (default: the LM's own)",
    )


def run(args: argparse.Namespace) -> int:
    from training.assemble import assemble_pipeline
    from training.cli_args import pairs

    out = assemble_pipeline(
        args.lm,
        args.out,
        pairs(args.tokenizers, "--tokenizers"),
        pairs(args.decoders, "--decoders"),
        speculative_default=None
        if args.speculative_default is None
        else args.speculative_default == "on",
    )
    print(out)
    return 0
