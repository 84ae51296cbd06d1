"""How well do image codes keep the encoder's features? Train the semantic image tokenizer on
toy-world scenes, then report on held-out scenes (held-out colour/shape pairs, new seeds):
codebook usage and perplexity, feature reconstruction cosine (on the standardised features the
tokenizer is trained on, where a constant guess scores 0, and on the raw features, where the
constant guess "the mean training feature" is reported as a baseline), and whether encoding is
deterministic.

    .venv/bin/python benchmarks/bench_image_tokenizer.py --out runs/image_tokenizer --steps 600
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from tokenizers_mm.vision import (
    SemanticImageTokenizer,
    codebook_usage,
    encode_features,
    train_image_tokenizer,
)
from training.toyworld.scenes import render_scene, sample_scene


def render_scenes(n: int, novel: bool, seed: int, size: int) -> list:
    rng = np.random.default_rng(seed)
    return [render_scene(sample_scene(rng, novel=novel), size) for _ in range(n)]


def evaluate(tokenizer: SemanticImageTokenizer, images: list) -> dict[str, float]:
    """Codebook use, reconstruction cosines and baselines on ``images``."""
    features = encode_features(tokenizer, images)
    with torch.no_grad():
        quantised, codes, _ = tokenizer.quantise(features, freeze_codebook=True)
        standardised = tokenizer.standardise(features)
        reconstruction = tokenizer.reconstruct(quantised)
        raw_reconstruction = tokenizer.embed_codes(codes).transpose(1, 2).reshape(features.shape)
    usage, perplexity = codebook_usage(codes, tokenizer.codebook_size)
    mean_guess = tokenizer.feature_mean[None, :, None, None].expand_as(features)

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return round(F.cosine_similarity(a, b, dim=1).mean().item(), 4)

    again = tokenizer.encode(images[:16])
    return {
        "codebook_usage": round(usage, 4),
        "codes_used": int(codes.unique().numel()),
        "perplexity": round(perplexity, 1),
        "cosine_standardised": cosine(reconstruction, standardised),
        "cosine_raw": cosine(raw_reconstruction, features),
        "baseline_mean_feature_cosine_raw": cosine(mean_guess, features),
        "deterministic": bool(
            torch.equal(again, tokenizer.encode(images[:16])) and torch.equal(again, codes[:16])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/image_tokenizer")
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--test-images", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--assets", default=None, help="copy the trained tokenizer here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)

    start = time.perf_counter()
    if (out / "model.safetensors").is_file():
        tokenizer, seconds = SemanticImageTokenizer.from_pretrained(out), None  # trained before
    else:
        train = render_scenes(args.train_images, False, 0, args.image_size)
        tokenizer = train_image_tokenizer(out, train, steps=args.steps)
        seconds = round(time.perf_counter() - start, 1)  # rendering + features + training
    half = args.test_images // 2
    test = render_scenes(half, True, 1, args.image_size)
    test += render_scenes(args.test_images - half, False, 2, args.image_size)
    results = {
        "train_images": args.train_images,
        "test_images": len(test),
        "train_seconds": seconds,
        "grid": tokenizer.grid,
        "codebook_size": tokenizer.codebook_size,
        **evaluate(tokenizer, test),
    }
    print(json.dumps(results, indent=2))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    if args.assets:
        tokenizer.save_pretrained(args.assets)
        (Path(args.assets) / "benchmark.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
