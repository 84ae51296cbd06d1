"""Pretrain a vision encoder's patch features with dense labels, in place of CLIP weights.

No pretrained CLIP/SigLIP weights can be fetched here, and a randomly initialised ViT's patch
features keep colour and position but lose most of the shape of small objects (a linear probe
reads the shape of a one-object toy-world scene from them in 88% of held-out cases; from the
semantic codes quantised from them, 76-80%). So the micro ViT is pretrained the way a segmenting
classifier is: a 1x1 conv head on its patch grid predicts, for every patch, one class per task
(e.g. the toy world's shape / colour / size / position of what is drawn there), with summed
cross-entropy. The semantic image tokenizer then quantises features that name what is where.

The loop is a few lines written here (no library trains a timm/open_clip tower with dense
heads); batches come from a user function so any labelled image source fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from encoders.vision import VisionEncoder
from omni.common.loop import TrainLoop

# (images, labels [B, n_tasks, grid, grid]) for a batch size and a random generator.
BatchFn = Callable[[int, np.random.Generator], tuple[list, torch.Tensor]]


class DenseHeads(nn.Module):
    """One 1x1 conv over the patch grid giving the logits of every task at every patch."""

    def __init__(self, width: int, num_classes: Sequence[int]) -> None:
        super().__init__()
        self.num_classes = list(num_classes)
        self.conv = nn.Conv2d(width, sum(self.num_classes), 1)

    def loss(self, grid: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """Summed cross-entropy over tasks, and each task's accuracy on labelled patches
        (those where the first task's class is not 0, i.e. not background)."""
        logits = self.conv(grid).split(self.num_classes, dim=1)
        foreground = labels[:, 0] > 0
        loss = sum(F.cross_entropy(task, labels[:, i]) for i, task in enumerate(logits))
        with torch.no_grad():
            accuracy = [
                (task.argmax(1) == labels[:, i])[foreground].float().mean().item()
                for i, task in enumerate(logits)
            ]
        return loss, accuracy


def pretrain_vision_encoder(
    encoder: VisionEncoder,
    make_batch: BatchFn,
    num_classes: Sequence[int],
    out_dir: str | Path,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint_every: int = 100,
) -> VisionEncoder:
    """Train ``encoder``'s ViT with dense heads on batches from ``make_batch``; resume from
    ``out_dir/checkpoint`` if present (a larger ``steps`` continues a finished run); append
    ``step,loss,<task accuracies>`` to ``out_dir/log.csv``; save the encoder to ``out_dir``
    (``save_pretrained``)."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}")
    out_dir = Path(out_dir)
    heads = DenseHeads(encoder.width, num_classes)
    params = [*encoder.tower.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr, weight_decay=0.01)
    modules = {"encoder": encoder, "heads": heads}
    out_dir.mkdir(parents=True, exist_ok=True)
    log = (out_dir / "log.csv").open("a")
    loop = TrainLoop(
        out_dir / "checkpoint",
        steps,
        modules,
        {"adamw": optimizer},
        checkpoint_every=checkpoint_every,
        on_checkpoint=lambda _: log.flush(),
        desc="pretrain vision encoder",
    )
    rng = np.random.default_rng([seed, loop.start])  # a resumed run draws fresh, reproducible data
    encoder.train()
    for step in loop:
        images, labels = make_batch(batch_size, rng)
        grid = encoder._grid(images)
        if grid.shape[-2:] != labels.shape[-2:]:
            raise ValueError(
                f"labels are on a {tuple(labels.shape[-2:])} grid but the encoder's patch grid "
                f"is {tuple(grid.shape[-2:])}"
            )
        loss, accuracy = heads.loss(grid, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loop.log(loss=loss.item(), acc="/".join(f"{a:.2f}" for a in accuracy))
        log.write(f"{step}," + ",".join(f"{v:.4f}" for v in (loss.item(), *accuracy)) + "\n")
    log.close()
    encoder.eval()
    encoder.save_pretrained(out_dir)
    return encoder
