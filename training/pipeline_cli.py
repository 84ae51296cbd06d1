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
        default=None,
        metavar="on|off|MODALITIES",
        help="whether omni.generate drafts with MTP unless told: on, off, or the output "
        "modalities it drafts for, comma-separated (text,audio); default: the LM's own",
    )


def speculative_setting(value: str | None) -> bool | list[str] | None:
    """``--speculative-default``: on / off, or a list of output modalities."""
    from omni.vocab import OUTPUT_MODALITIES

    if value is None or value in ("on", "off"):
        return None if value is None else value == "on"
    modalities = [m.strip() for m in value.split(",")]
    unknown = [m for m in modalities if m not in OUTPUT_MODALITIES]
    if unknown or not modalities:
        raise ValueError(
            f"--speculative-default takes on, off or output modalities out of "
            f"{OUTPUT_MODALITIES}, got {value!r}"
        )
    return modalities


def run(args: argparse.Namespace) -> int:
    from training.assemble import assemble_pipeline
    from training.cli_args import pairs

    out = assemble_pipeline(
        args.lm,
        args.out,
        pairs(args.tokenizers, "--tokenizers"),
        pairs(args.decoders, "--decoders"),
        speculative_default=speculative_setting(args.speculative_default),
    )
    print(out)
    return 0
