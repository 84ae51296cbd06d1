"""Packed rows vs padded batches on the synthetic-world mixture: real-token share and
training throughput (real tokens per second of forward + backward), in one process.

    python benchmarks/bench_packing.py [--world runs/toyworld] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from omni.presets import build_micro
from training.data import DataSpec, Manifest, RowPacker, real_token_count

TASKS = ["caption", "vqa", "translate", "draw"]


def throughput(model, batches, pad_id: int) -> float:
    tokens, began = 0, time.perf_counter()
    for batch in batches:
        model(**batch.model_inputs()).loss.backward()
        tokens += real_token_count(batch, pad_id)
    return tokens / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", default=None, help="toy-world folder (made if missing)")
    parser.add_argument("--row-length", type=int, default=512)
    parser.add_argument("--rows", type=int, default=4, help="rows per packed batch")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--out",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    from tokenizers_mm.vision import SemanticImageTokenizer
    from training.data import CodeCache
    from training.toyworld import generate

    scratch = Path(tempfile.mkdtemp())
    world = Path(args.world or scratch / "world")
    manifest = world / "manifest.jsonl"
    if not manifest.is_file():
        generate(world, 400, seed=0, tasks=TASKS)
    model, processor = build_micro("micro-llama")
    torch.manual_seed(0)
    cache = CodeCache(
        scratch / "codes", {"image": SemanticImageTokenizer(grid=8, codebook_size=256)}
    )
    spec = DataSpec([Manifest(manifest)], [1.0], args.row_length, cache=cache)
    packer = RowPacker(spec, processor)
    packed = [packer.next_batch(args.rows) for _ in range(args.steps)]
    samples = sum(int((b.position_ids == 0).sum()) for b in packed) // args.steps
    # The padded baseline sees the same number of samples per batch, right-padded.
    padder = RowPacker(
        DataSpec([Manifest(manifest)], [1.0], args.row_length, cache=cache), processor
    )
    padded = [
        processor.collate([padder.encode(next(padder.sampler)) for _ in range(samples)])
        for _ in range(args.steps)
    ]
    pad = processor.layout.special_id("<|pad|>")
    padded_share = sum(real_token_count(b, pad) for b in padded) / sum(
        b.input_ids.numel() for b in padded
    )
    throughput(model, packed[:1], pad)  # warm up
    packed_rate = throughput(model, packed, pad)
    padded_rate = throughput(model, padded, pad)
    print(f"packing ratio (real tokens / row tokens): {packer.packing_ratio:.4f}")
    print(f"padded batches: real-token share {padded_share:.4f} ({samples} samples per batch)")
    print(
        f"tokens/s packed {packed_rate:.0f}, padded {padded_rate:.0f}, "
        f"ratio {packed_rate / padded_rate:.2f}x"
    )
    figures = {
        "row_length": args.row_length,
        "packing_ratio": round(packer.packing_ratio, 4),
        "padded_real_token_share": round(padded_share, 4),
        "tokens_per_s_packed": round(packed_rate),
        "tokens_per_s_padded": round(padded_rate),
    }
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
