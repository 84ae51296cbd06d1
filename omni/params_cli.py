"""``omni params NAME [--encoders SET] [--json]``: parameters of the whole Omni model of a named
configuration (backbone, appended code rows, encoders, projectors, MTP), counted on the meta
device."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a configuration name, e.g. k-exaone-236b-a23b, micro-llama")
    parser.add_argument(
        "--encoders",
        choices=("full", "micro", "none"),
        default=None,
        help="encoder set to count (default: micro for micro-* names, full otherwise)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _line(label: str, count: int) -> str:
    return f"  {label:<22}{count:>18,} ({count / 1e9:.2f}B)"


def run(args: argparse.Namespace) -> int:
    from omni.param_count import count_omni_parameters

    count = count_omni_parameters(args.name, args.encoders)
    if args.json:
        print(json.dumps(count.as_dict()))
        return 0
    print(f"{count.name} ({count.model_type}), the whole Omni model")
    print(_line("backbone", count.backbone))
    print(_line("  active per token", count.backbone_active))
    print(_line("code rows (emb+head)", count.code_rows))
    for modality, size in sorted(count.encoders.items()):
        print(_line(f"{modality} encoder", size))
    print(_line("projectors", count.projectors))
    print(_line("MTP module", count.mtp))
    print(_line("total", count.total))
    print(_line("active per token", count.active))
    return 0
