"""Issue 20's GPU check in one prepared script: decoding speed of a backbone of about 1B
parameters in bfloat16 on an accelerator.

A micro-hcx-omni pipeline is built at the 1B size (``--size 1b``: 2048 wide, 20 layers, GQA
16/8, MLP 5632: 0.95B parameters), trained for ``--train-steps`` on the toy translation task in
float32 on the device so that its MTP head has something to draft, saved, and loaded back by
``omni.load(device=..., dtype=bfloat16)`` as a user would. Then, on the same weights:

- **text decoding**, the arms of ``bench_decode.py`` taken in turn prompt by prompt:
  transformers' ``generate`` (the baseline), Omni plain, Omni speculative at k = 1..4; tokens/s,
  ratios to the baseline, each speculative arm's mean acceptance, and whether every answer
  equals the baseline's;
- **time to the first audio chunk** through ``omni.stream`` (median over prompts), beside the
  whole streamed answer;
- **image decode at 8 steps**: the shipped default model's image decoder (a diffusers UNet) on
  the device in bfloat16, seconds per image at batch 1 and 16.

Where no accelerator is lent (the CPU and CI), ``--smoke`` runs the same code on a tiny
backbone, so the script is known to work before device time is spent on it.

    python benchmarks/bench_gpu_decode.py --out $OUT/bench_gpu_decode.json     # on the GPU
    .venv/bin/python benchmarks/bench_gpu_decode.py --smoke --out /tmp/gpu.json  # CPU check

The device machine has torch and an older transformers; carry this checkout's wheels of
transformers, diffusers and the project (``pip download --no-deps``) and install them there
first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from decode_arms import arms, in_turn  # beside this script

import omni
from omni.presets import build_micro_pipeline
from omni.speculation import SpeculationPolicy

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SIZES = {
    "1b": dict(
        hidden_size=2048,
        num_hidden_layers=20,
        num_attention_heads=16,
        num_key_value_heads=8,
        intermediate_size=5632,
    ),
    "smoke": dict(hidden_size=64, num_hidden_layers=2, intermediate_size=192),
}


def trained_pipeline(size: str, steps: int, learning_rate: float, device: str, seed: int):
    """The pipeline at ``size``, trained on the device, saved and loaded back in bfloat16;
    with its backbone's parameter count."""
    from training.bench_generate_cli import train_micro

    pipe = build_micro_pipeline("micro-hcx-omni", seed=seed, **SIZES[size])
    pipe.model.to(device)
    if steps:
        train_micro(pipe, steps, seed, learning_rate)
    parameters = sum(p.numel() for p in pipe.model.backbone.parameters())
    pipe.model.to("cpu")
    with tempfile.TemporaryDirectory(prefix="omni-gpu-decode-") as folder:
        pipe.save_pretrained(folder)
        return omni.load(folder, device=device, dtype=torch.bfloat16), parameters


def text_decoding(pipe, prompts: int, tokens: int, repeats: int, seed: int) -> dict:
    """Tokens/s of each arm over ``prompts`` single requests, each prompt's arms in turn."""
    from training.bench_generate_cli import chat, translation_pairs

    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    identical, acceptance = True, {}
    for english, _ in translation_pairs(prompts, seed + 1):
        batch = pipe.processor([chat(english)], padding_side="left", add_generation_prompt=True)
        functions = arms(pipe, batch, "text", tokens, [1, 2, 3, 4], SpeculationPolicy())
        functions.pop("omni_compiled")  # a static-cache compile per prompt shape: not this check
        medians, results = in_turn(functions, repeats)
        for name, (answers, stats) in results.items():
            seconds[name] = seconds.get(name, 0.0) + medians[name]
            counts[name] = counts.get(name, 0) + sum(len(a) for a in answers)
            identical &= answers == results["hf_generate"][0]
            if stats is not None and stats.drafts:
                acceptance.setdefault(name, []).append(stats.accepted / stats.drafts)
    rates = {name: counts[name] / seconds[name] for name in seconds}
    best = max((n for n in rates if n.startswith("omni_k")), key=rates.get)
    return {
        "tokens_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio_to_hf_generate": {k: round(v / rates["hf_generate"], 3) for k, v in rates.items()},
        "best_k": best,
        "acceptance": {k: round(statistics.mean(v), 3) for k, v in acceptance.items()},
        "identical_output": identical,
    }


def first_audio(pipe, prompts: int, tokens: int) -> dict:
    """Median seconds to the first audio chunk and to the end of ``omni.stream``."""
    from bench_first_audio import stream_times

    from training.bench_generate_cli import translation_pairs

    options = {"max_new_tokens": tokens, "seed": 0}
    stream_times(pipe, "say: hello", options)  # warm-up
    firsts, totals = [], []
    for english, _ in translation_pairs(prompts, 7):
        first, total = stream_times(pipe, f"say: {english}", options)
        firsts.append(first)
        totals.append(total)
    return {
        "first_audio_chunk_s_median": round(statistics.median(firsts), 4),
        "whole_answer_s_median": round(statistics.median(totals), 4),
    }


def image_decode(device: str, repeats: int, batches=(1, 16)) -> dict:
    """Seconds per image of the shipped image decoder at 8 steps, in bfloat16."""
    from decoders import load_decoder

    decoder = load_decoder(ASSETS / "default-model" / "image_decoder")
    decoder = decoder.to(device=device, dtype=torch.bfloat16).eval()
    config = decoder.config
    figures = {}
    for size in batches:
        shape = (size, config.max_code_rows, config.max_code_cols)
        codes = torch.randint(0, config.codebook_size, shape, device=device)

        def run(codes=codes):
            decoder.sample(codes, config.image_size, config.image_size, 8, 2.0, 0)
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        medians, _ = in_turn({"decode": run}, repeats)
        figures[f"batch_{size}"] = {"s_per_image": round(medians["decode"] / size, 4)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="1b")
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a tiny backbone, a few steps")
    parser.add_argument("--out", help="JSON figures (default: bench_gpu_decode.json beside this)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.train_steps, args.prompts, args.tokens, args.repeats = "smoke", 2, 2, 8, 1
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    pipe, parameters = trained_pipeline(
        args.size, args.train_steps, args.learning_rate, args.device, args.seed
    )
    figures = {
        "arguments": vars(args),
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "backbone_parameters": parameters,
        "text": text_decoding(pipe, args.prompts, args.tokens, args.repeats, args.seed),
        "first_audio": first_audio(pipe, args.prompts, args.tokens),
        "image_decode_8_steps": image_decode(args.device, args.repeats),
    }
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out or Path(__file__).with_suffix(".json"))
    out.write_text(json.dumps(figures, indent=2) + "\n")
    json.dump(figures, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
