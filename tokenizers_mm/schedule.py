"""The tokenizer trainers' learning-rate schedule."""

from __future__ import annotations

import math


def warmup_cosine_lr(step: int, steps: int, peak: float) -> float:
    """Learning rate at ``step`` of ``steps``: linear warm-up over the first 5%, then a cosine
    down to 2% of ``peak``. A function of the step alone, so a resumed run stays on it."""
    warmup = max(1, steps // 20)
    progress = min(1.0, step / max(1, steps))
    return peak * min(1.0, (step + 1) / warmup) * (0.02 + 0.49 * (1 + math.cos(math.pi * progress)))
