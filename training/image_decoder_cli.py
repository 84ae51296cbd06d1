"""``omni train image-decoder``: train the diffusion image decoder, conditioned on the codes a
trained semantic image tokenizer gives its inputs.

Its data is either the images of a sample manifest (``--data``; each image is its own target),
or scenes drawn by the toy world's generator (``--world STYLE``): the codes come from each scene
as that style writes it (its looks, JPEG), the target is the same scene in the classic
rendering, so the decoder draws what the codes say, cleanly, whatever the input looked like."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder with manifest.jsonl + media/")
    source.add_argument(
        "--world",
        metavar="STYLE",
        help="draw the training scenes from this world style's train ranges instead (e.g. varied)",
    )
    parser.add_argument(
        "--images", type=int, default=20000, help="with --world: how many scenes to draw"
    )
    parser.add_argument(
        "--classic-share",
        type=float,
        default=0.25,
        help="with --world: share of scenes whose codes come from the classic rendering itself",
    )
    parser.add_argument(
        "--classic-world-share",
        type=float,
        default=0.0,
        help="with --world: share of scenes drawn from the classic world itself (its sizes and "
        "positions, classic rendering on both sides), so the classic world stays drawn",
    )
    parser.add_argument("--tokenizer", required=True, help="saved semantic image tokenizer folder")
    parser.add_argument("--out", default="runs/image_decoder", help="checkpoints + decoder/")
    parser.add_argument("--steps", type=int, default=2000, help="total optimizer steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--max-images", type=int, default=0, help="use at most this many (0: all)")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between saves")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--decay-steps",
        type=int,
        default=0,
        help="final steps over which the lr falls linearly to 0 (0: constant after warm-up)",
    )
    parser.add_argument(
        "--block-out-channels",
        type=int,
        nargs=3,
        default=None,
        metavar=("LEVEL1", "LEVEL2", "LEVEL3"),
        help="UNet widths of its three levels; the first also feeds the pixel output "
        "(default: ImageDecoderConfig's, 32 48 64)",
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=0.999,
        help="decay of the weight average saved as the decoder (0: the raw weights)",
    )
    parser.add_argument(
        "--object-weight",
        type=float,
        default=0.0,
        help="extra loss weight of pixels that stand out from the image's median colour, and "
        "of a 2-pixel margin around them: for flat backgrounds such as the toy world's (the "
        "shipped decoder used 5); 0 (default) is plain MSE",
    )
    parser.add_argument(
        "--init",
        default=None,
        help="start from this saved decoder's weights (e.g. after retraining the tokenizer)",
    )


def _manifest_images(args: argparse.Namespace) -> tuple[list, list]:
    """(inputs, targets) of ``--data``: each image is its own target."""
    from PIL import Image

    from omni.common.manifest import media_segments

    paths = [path for path, _, _ in media_segments(args.data, "image")]
    if args.max_images:
        paths = paths[: args.max_images]
    pictures = [Image.open(path).convert("RGB") for path in paths]
    return pictures, pictures


def _world_images(make_pairs, n: int, seed: int) -> tuple[list, list]:
    """(scenes as written, their classic renderings) of ``--world``, ``n`` of each."""
    import numpy as np
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for start in tqdm(range(0, n, 500), desc="draw scenes"):
        written, classic = make_pairs(min(500, n - start), rng)
        inputs += written
        targets += classic
    return inputs, targets


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from decoders.vision import ImageDecoder, ImageDecoderConfig, from_pil
    from decoders.vision_train import ImageDecoderTrainConfig, train_image_decoder
    from tokenizers_mm.vision import SemanticImageTokenizer
    from training.toyworld.looks import styled_pairs

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.world and args.images < 1:
        raise ValueError(f"--images must be at least 1, got {args.images}")
    if not (Path(args.tokenizer) / "config.json").is_file():
        raise ValueError(f"--tokenizer {args.tokenizer}: no saved image tokenizer there")
    tokenizer = SemanticImageTokenizer.from_pretrained(args.tokenizer)
    if args.world:
        make_pairs = styled_pairs(
            args.world, tokenizer.encoder.image_size, args.classic_share, args.classic_world_share
        )
        inputs, pictures = _world_images(make_pairs, args.images, args.seed)
    else:
        inputs, pictures = _manifest_images(args)
    size = pictures[0].size[0]
    if any(p.size != (size, size) for p in pictures):
        raise ValueError(f"training images must all be {size}x{size} squares")
    images = torch.stack([from_pil(p) for p in pictures])
    codes = torch.cat(
        [
            tokenizer.encode(inputs[i : i + 64])
            for i in tqdm(range(0, len(inputs), 64), desc="tokenize images")
        ]
    )
    rows, cols = codes.shape[1:]
    config = ImageDecoderConfig(
        codebook_size=tokenizer.codebook_size,
        max_code_rows=rows,
        max_code_cols=cols,
        image_size=size,
    )
    if args.block_out_channels:
        config.block_out_channels = list(args.block_out_channels)
    train = ImageDecoderTrainConfig(
        output=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        ema_decay=args.ema_decay,
        decay_steps=args.decay_steps,
        object_weight=args.object_weight,
    )
    decoder = ImageDecoder(config)
    if args.init:
        initial = ImageDecoder.from_pretrained(args.init)
        if initial.to_config() != decoder.to_config():
            raise ValueError(f"--init {args.init} has another configuration than this data needs")
        decoder.load_state_dict(initial.state_dict())
    train_image_decoder(decoder, images, codes, train)
    print(
        f"image decoder saved to {args.out}/decoder ({len(pictures)} images, codes {rows}x{cols})"
    )
    return 0
