"""``omni params NAME [--json]``: total and active parameters, counted on the meta device."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a configuration name, e.g. k-exaone-236b-a23b, micro-llama")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from omni.presets import count_parameters

    count = count_parameters(args.name)
    if args.json:
        print(json.dumps(count.as_dict()))
        return 0
    print(f"{count.name} ({count.model_type})")
    print(f"  total parameters:  {count.total:,} ({count.total / 1e9:.2f}B)")
    print(f"  active per token:  {count.active:,} ({count.active / 1e9:.2f}B)")
    print(f"  MTP module:        {count.mtp:,} ({count.mtp / 1e9:.2f}B, not in the totals)")
    return 0
