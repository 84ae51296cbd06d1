"""Paired teacher-student distillation of a trained tokenizer's encoder.

A tokenizer's units are read by everything downstream (its decoders, any Omni LM trained on
them), so retraining it on a wider world would force all of them to be retrained. Instead its
encoder is tuned so that an input in any training style gives what the original encoder gives
for the same content in the style it was trained on: the student (the encoder, unfrozen) sees
``styled`` inputs, a frozen copy of the original (the teacher) sees the ``canonical`` ones, and
a loss compares the two. The image and speech style-invariance tuners
(``tokenizers_mm.vision_invariance``, ``tokenizers_mm.speech_invariance``) each give the pairs
and the loss.

No library does this for a discrete tokenizer; it is a short loop written here (feature
distillation, as in knowledge distillation, with paired inputs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# (batch size, rng) -> (inputs in training styles, the same content in the original style)
PairMaker = Callable[[int, np.random.Generator], tuple[list[Any], list[Any]]]
# (student, teacher, styled, canonical) -> (loss, figures to log)
PairLoss = Callable[[nn.Module, nn.Module, list[Any], list[Any]], tuple[torch.Tensor, dict]]


def distil_encoder(
    encoder: nn.Module,
    make_pairs: PairMaker,
    pair_loss: PairLoss,
    out_dir: str | Path,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    checkpoint_every: int = 100,
    clip_norm: float | None = None,
    desc: str = "style invariance",
) -> nn.Module:
    """Tune ``encoder`` for ``steps`` steps of ``pair_loss`` on pairs from ``make_pairs``.

    A rerun resumes from ``out_dir/checkpoint`` exactly: each step's batch is drawn from
    ``(seed, step)`` and the teacher is saved beside the student. Returns the tuned encoder,
    frozen and in eval mode.
    """
    from omni.common.loop import TrainLoop
    from omni.common.schedule import tokenizer_schedule

    teacher = copy.deepcopy(encoder).requires_grad_(False).eval()
    student = encoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
    loop = TrainLoop(
        Path(out_dir) / "checkpoint",
        steps,
        {"student": student, "teacher": teacher},
        {"student": optimizer},
        schedule=tokenizer_schedule(steps),
        checkpoint_every=checkpoint_every,
        desc=desc,
    )
    student.train()
    for step in loop:
        styled, canonical = make_pairs(batch_size, np.random.default_rng([seed, step]))
        loss, figures = pair_loss(student, teacher, styled, canonical)
        optimizer.zero_grad()
        loss.backward()
        if clip_norm is not None:
            nn.utils.clip_grad_norm_(student.parameters(), clip_norm)
        optimizer.step()
        loop.log(loss=loss.item(), **figures)
    return student.requires_grad_(False).eval()
