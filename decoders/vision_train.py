"""Training loop of the diffusion image decoder: images and their semantic codes in,
flow-matching loss, AdamW, an exponential moving average of the weights (what is saved and
sampled, as diffusion trainers do), checkpoints that resume (weights, EMA, optimizer moments,
step)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from decoders.vision import ImageDecoder
from omni.common.loop import TrainLoop
from omni.common.schedule import warmup_stable_decay


@dataclass
class ImageDecoderTrainConfig:
    output: str = "runs/image_decoder"
    steps: int = 2000
    batch_size: int = 16
    lr: float = 5e-4
    warmup: int = 100
    # Steps at the end over which the lr falls linearly to 0 (``omni.common.schedule.warmup_stable_decay``).
    decay_steps: int = 0
    checkpoint_every: int = 100
    seed: int = 0
    # Decay of the weight EMA that is saved as the decoder (0: save the raw weights).
    ema_decay: float = 0.999
    # Extra loss weight of object pixels (see ImageDecoder.training_loss; 0: plain MSE).
    object_weight: float = 0.0


def train_image_decoder(
    decoder: ImageDecoder,
    images: torch.Tensor,
    codes: torch.Tensor,
    config: ImageDecoderTrainConfig,
) -> ImageDecoder:
    """Train on ``images [N, 3, H, W]`` in [-1, 1] with their ``codes [N, rows, cols]``;
    resume if ``config.output`` holds a checkpoint; save the decoder (the EMA weights when
    ``config.ema_decay`` > 0) to ``<output>/decoder`` and return it."""
    if images.shape[0] != codes.shape[0] or images.shape[0] == 0:
        raise ValueError(
            f"need as many code grids as images, got {codes.shape[0]} and {images.shape[0]}"
        )
    decoder.check_codes(codes[0])
    output = Path(config.output)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(decoder.parameters(), config.lr, weight_decay=0.0)
    modules = {"decoder": decoder}
    ema = None
    if config.ema_decay > 0:
        ema = AveragedModel(decoder, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
        modules["ema"] = ema
    saved = decoder if ema is None else ema.module  # what is saved, sampled and returned
    loop = TrainLoop(
        output / "checkpoint",
        config.steps,
        modules,
        {"decoder": optimizer},
        schedule=warmup_stable_decay(config.warmup, config.decay_steps, config.steps),
        rngs={"batches": generator, "torch": torch.default_generator},
        checkpoint_every=config.checkpoint_every,
        on_checkpoint=lambda _: saved.save_pretrained(output / "decoder"),
        desc="image decoder",
    )
    decoder.train()
    for _ in loop:
        index = torch.randint(images.shape[0], (config.batch_size,), generator=generator)
        loss = decoder.training_loss(images[index], codes[index], config.object_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        if ema is not None:
            ema.update_parameters(decoder)
        loop.log(loss=loss.item())
    saved.eval()
    return saved
