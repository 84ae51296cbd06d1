"""Generation on an accelerator: text, image and audio answers with the model placed by
``omni.load(device=..., dtype=...)``, against the same answers on the CPU in float32.

A random micro pipeline (or ``--model``) is saved once and loaded twice; each placement answers
the same prompts, and the figures are new tokens per second of decoding for each output
modality. Prints one JSON object.

    .venv/bin/python benchmarks/bench_device.py --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

import omni
from omni.presets import build_micro_pipeline

REQUESTS = {
    "text": ("tell me about the red circle", {"max_new_tokens": 64}),
    "image": ("draw a red circle", {"max_new_tokens": 80, "steps": 4}),
    "audio": ("say hello", {"max_new_tokens": 64}),
}


def answer_all(pipe, repeats: int) -> dict:
    """Tokens/s of each output modality (greedy, after one warm-up answer)."""
    figures = {}
    for modality, (prompt, options) in REQUESTS.items():
        pipe.generate(prompt, modality, seed=0, **options)  # warm-up: kernels, caches
        tokens = seconds = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            result = pipe.generate(prompt, modality, seed=0, **options)
            seconds += time.perf_counter() - start
            tokens += len(result.tokens)
        media = {"image": result.image, "audio": result.audio}.get(modality)
        assert modality == "text" or media is not None, f"no {modality} in the answer"
        figures[modality] = {
            "tokens_per_s": round(tokens / seconds, 1),
            "decode_tokens_per_s": round(len(result.tokens) / result.timings["decode_s"], 1),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a saved model folder (default: a random micro one)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.model is None:
            build_micro_pipeline("micro-llama").save_pretrained(folder)
        path = args.model or folder
        placed = omni.load(path, device=args.device, dtype=args.dtype)
        figures = {
            "placed": {"device": args.device, "dtype": args.dtype},
            "device_name": torch.cuda.get_device_name() if "cuda" in args.device else args.device,
            "cpu_float32": answer_all(omni.load(path), args.repeats),
            "device_run": answer_all(placed, args.repeats),
        }
    for modality in REQUESTS:
        cpu = figures["cpu_float32"][modality]["tokens_per_s"]
        figures.setdefault("speedup", {})[modality] = round(
            figures["device_run"][modality]["tokens_per_s"] / cpu, 2
        )
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
