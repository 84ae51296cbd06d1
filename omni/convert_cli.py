"""``omni convert hcx-omni SRC --out DST``: the official HyperCLOVA X SEED Omni 8B checkpoint as
an Omni pipeline folder; prints what was converted, what was not, and why."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="the unified checkpoint folder (config + sharded index)")
    parser.add_argument("--out", required=True, help="the pipeline folder to write")


def run(args: argparse.Namespace) -> int:
    from omni.hcx_convert import convert_hcx_omni

    for line in convert_hcx_omni(args.source, args.out):
        print(line)
    print(f"wrote {args.out}")
    return 0
