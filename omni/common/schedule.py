"""Learning-rate schedules of every trainer: transformers' own (``get_wsd_schedule``,
``get_cosine_with_min_lr_schedule_with_warmup``) as ``LambdaLR`` objects.

A ``Schedule`` builds the scheduler of one optimizer for a run that starts at ``start`` (0, or
the step a checkpoint resumes at): the step is the whole scheduler state, so a resumed run
stays on the curve and a rerun with more ``steps`` follows the curve of the new total. The
peak is the optimizer's ``lr`` (``defaults["lr"]``), never a checkpoint's last value.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_cosine_with_min_lr_schedule_with_warmup, get_wsd_schedule

Schedule = Callable[[Optimizer, int], LambdaLR]


def _from_peak(optimizer: Optimizer) -> Optimizer:
    for group in optimizer.param_groups:
        group["initial_lr"] = optimizer.defaults["lr"]
    return optimizer


def warmup_cosine(warmup: int, steps: int, min_lr_ratio: float) -> Schedule:
    """Linear warm-up over ``warmup`` steps, then a cosine down to ``min_lr_ratio`` x peak at
    ``steps``."""

    def build(optimizer: Optimizer, start: int) -> LambdaLR:
        return get_cosine_with_min_lr_schedule_with_warmup(
            _from_peak(optimizer), warmup, steps, min_lr_rate=min_lr_ratio, last_epoch=start - 1
        )

    return build


def warmup_stable_decay(warmup: int, decay_steps: int, steps: int) -> Schedule:
    """Linear warm-up over ``warmup`` steps (0: none), the peak, then a linear fall to 0 over
    the last ``decay_steps`` (0: none)."""

    def build(optimizer: Optimizer, start: int) -> LambdaLR:
        return get_wsd_schedule(
            _from_peak(optimizer),
            warmup,
            decay_steps,
            num_training_steps=steps,
            decay_type="linear",
            last_epoch=start - 1,
        )

    return build


def tokenizer_schedule(steps: int) -> Schedule:
    """The tokenizer trainers' curve: warm-up over the first 5%, cosine down to 2%."""
    return warmup_cosine(max(1, steps // 20), steps, 0.02)


def learning_rates(schedule: Schedule, steps: int, peak: float = 1.0) -> list[float]:
    """The rate ``schedule`` gives at each of ``steps`` steps (to read or plot a curve)."""
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    scheduler = schedule(optimizer, 0)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates
