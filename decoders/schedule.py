"""The decoder trainers' learning-rate schedule: warm-up, stable, linear decay."""

from __future__ import annotations


def warmup_stable_decay(
    step: int, peak: float, steps: int, warmup: int = 0, decay_steps: int = 0
) -> float:
    """Learning rate at ``step`` of ``steps``: a linear warm-up over ``warmup`` steps (0: none),
    ``peak``, then a linear fall to 0 over the last ``decay_steps`` (0: none). A function of the
    step alone, so a resumed run stays on it and a rerun with more ``steps`` extends the stable
    part (or, after a finished decay, climbs back to ``peak`` and decays again)."""
    lr = peak * min(1.0, (step + 1) / warmup) if warmup > 0 else peak
    if decay_steps > 0:
        lr *= min(1.0, (steps - step) / decay_steps)
    return lr
