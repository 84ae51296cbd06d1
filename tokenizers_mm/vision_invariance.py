"""Style invariance for a trained image tokenizer, by feature distillation.

The image tokenizer's codes are read by everything downstream: the image decoder draws from
them and an Omni LM is trained on them. Retraining the tokenizer on a wider range of drawing
styles would give new codes and force both to be retrained. Instead, its frozen encoder is
tuned so that a scene drawn in any training style gives the features (and so the codes) the
original encoder gives for the same scene drawn in the style it was trained on: the student
(the tokenizer's encoder, unfrozen) sees ``styled`` images, the teacher (a frozen copy of the
original) sees ``canonical`` renderings of the same scenes, and the loss is the distance of
the student's pre-quantisation latents and standardised features to the teacher's. The
codebook, the latent projections and the decoders stay as they are.

No library does this for a VQ tokenizer; it is a short loop written here (teacher-student
feature distillation, as in knowledge distillation, with paired inputs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tokenizers_mm.vision import SemanticImageTokenizer

# (batch size, rng) -> (images in training styles, the same scenes in the original style)
PairMaker = Callable[[int, np.random.Generator], tuple[list[Any], list[Any]]]


def _latents(tokenizer: SemanticImageTokenizer, encoder, images) -> tuple[torch.Tensor, ...]:
    """(standardised grid features, pre-quantisation latents) of ``images`` under ``encoder``."""
    features = tokenizer.standardise(tokenizer.pool_to_grid(encoder.features(images)))
    return features, tokenizer.down(features)


def _codes(tokenizer: SemanticImageTokenizer, latents: torch.Tensor) -> torch.Tensor:
    """The codes of pre-quantisation latents (the quantizer is in eval mode: nothing updates)."""
    return tokenizer.quantizer(latents, freeze_codebook=True)[1]


def distil_style_invariance(
    tokenizer: SemanticImageTokenizer,
    make_pairs: PairMaker,
    out_dir: str | Path,
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 3e-4,
    seed: int = 0,
    checkpoint_every: int = 100,
) -> SemanticImageTokenizer:
    """Tune ``tokenizer``'s encoder so styled images give the original codes; save the result
    to ``out_dir``. A rerun resumes from ``out_dir/checkpoint`` exactly (each step's batch is
    drawn from ``(seed, step)``; the teacher is saved beside the student)."""
    from omni.common.loop import TrainLoop
    from omni.common.schedule import tokenizer_schedule

    out_dir = Path(out_dir)
    checkpoint = out_dir / "checkpoint"
    teacher = copy.deepcopy(tokenizer.encoder).requires_grad_(False).eval()
    student = tokenizer.encoder.requires_grad_(True)
    tokenizer.down.requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
    loop = TrainLoop(
        checkpoint,
        steps,
        {"student": student, "teacher": teacher},
        {"student": optimizer},
        schedule=tokenizer_schedule(steps),
        checkpoint_every=checkpoint_every,
        desc="style invariance",
    )
    tokenizer.eval()
    student.train()
    for step in loop:
        styled, canonical = make_pairs(batch_size, np.random.default_rng([seed, step]))
        with torch.no_grad():
            target_features, target = _latents(tokenizer, teacher, canonical)
        features, latents = _latents(tokenizer, student, styled)
        loss = F.mse_loss(latents, target) + F.mse_loss(features, target_features)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            same = _codes(tokenizer, latents) == _codes(tokenizer, target)
        loop.log(loss=loss.item(), same_codes=same.float().mean().item())
    tokenizer.encoder = student.requires_grad_(False).eval()
    tokenizer.save_pretrained(out_dir)
    return tokenizer
