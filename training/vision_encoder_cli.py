"""``omni train vision-encoder``: pretrain the micro ViT on toy-world scenes with dense
per-patch labels (shape, colour, size, position, coverage), standing in for CLIP weights that
cannot be fetched here. Scenes are drawn fresh every step (never a held-out novel pair). The
saved folder is what ``omni train tokenizer --kind image --encoder DIR`` starts from."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/vision_encoder", help="encoder folder + checkpoint")
    parser.add_argument("--steps", type=int, default=1500, help="total optimizer steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=64, help="scene and ViT input size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from encoders import VisionEncoder
    from encoders.vision_pretrain import pretrain_vision_encoder
    from training.toyworld.scenes import PATCH_TASKS, patch_labels, render_scene, sample_scene

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    encoder = VisionEncoder(image_size=args.image_size)

    def make_batch(size: int, rng: np.random.Generator) -> tuple[list, torch.Tensor]:
        scenes = [sample_scene(rng) for _ in range(size)]
        labels = np.stack([patch_labels(s, encoder.grid, args.image_size) for s in scenes])
        return [render_scene(s, args.image_size) for s in scenes], torch.from_numpy(labels)

    pretrain_vision_encoder(
        encoder,
        make_batch,
        list(PATCH_TASKS.values()),
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    print(f"vision encoder saved to {args.out}")
    return 0
