"""How well do image codes keep the encoder's features? Train the semantic image tokenizer on
toy-world scenes, then report on held-out scenes (held-out colour/shape pairs, new seeds):
codebook usage and perplexity, feature reconstruction cosine (on the standardised features the
tokenizer is trained on, where a constant guess scores 0, and on the raw features, where the
constant guess "the mean training feature" is reported as a baseline), and whether encoding is
deterministic. Whether codes keep what matters downstream: a linear probe reads the shape of
one-object held-out scenes from the features the codes reconstruct, and from the encoder's
own features for comparison.

    .venv/bin/omni train vision-encoder --out runs/vision_encoder --steps 1500
    .venv/bin/python benchmarks/bench_image_tokenizer.py --out runs/image_tokenizer --steps 600 \\
        --encoder runs/vision_encoder
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
from training.toyworld.scenes import SHAPES, render_scene, sample_scene


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


def shape_probe(tokenizer: SemanticImageTokenizer, n_train: int, n_test: int) -> dict:
    """Held-out accuracy of a linear probe (logistic regression) for the shape of one-object
    scenes, from the encoder's grid features and from the features the codes reconstruct."""
    rng = np.random.default_rng(3)
    scenes = [sample_scene(rng, n_objects=1) for _ in range(n_train + n_test)]
    images = [render_scene(scene, tokenizer.encoder.image_size) for scene in scenes]
    labels = torch.tensor([SHAPES.index(scene.objects[0].shape) for scene in scenes])
    features = encode_features(tokenizer, images)
    with torch.no_grad():
        from_codes = tokenizer.embed_codes(tokenizer.quantise(features, True)[1])

    def probe(inputs: torch.Tensor) -> float:
        inputs = inputs.flatten(1)
        inputs = (inputs - inputs[:n_train].mean(0)) / (inputs[:n_train].std(0) + 1e-6)
        linear = torch.nn.Linear(inputs.shape[1], len(SHAPES))
        optimizer = torch.optim.Adam(linear.parameters(), 1e-2, weight_decay=1e-4)
        for _ in range(300):
            loss = F.cross_entropy(linear(inputs[:n_train]), labels[:n_train])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        predicted = linear(inputs[n_train:]).argmax(1)
        return round((predicted == labels[n_train:]).float().mean().item(), 3)

    return {"shape_probe_features": probe(features), "shape_probe_codes": probe(from_codes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/image_tokenizer")
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--test-images", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoder", default=None, help="pretrained vision encoder folder")
    parser.add_argument("--assets", default=None, help="copy the trained tokenizer here")
    parser.add_argument(
        "--results",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)

    start = time.perf_counter()
    if (out / "model.safetensors").is_file():
        tokenizer, seconds = SemanticImageTokenizer.from_pretrained(out), None  # trained before
    else:
        train = render_scenes(args.train_images, False, 0, args.image_size)
        tokenizer = train_image_tokenizer(out, train, steps=args.steps, encoder=args.encoder)
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
        **shape_probe(tokenizer, 2000, 500),
    }
    print(json.dumps(results, indent=2))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    if args.assets:
        tokenizer.save_pretrained(args.assets)
        (Path(args.assets) / "benchmark.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
