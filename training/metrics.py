"""The metrics log of a curriculum stage: one CSV row per step (``metrics.csv``) and, when
tensorboard is installed and asked for, the same scalars as events."""

from __future__ import annotations

import csv
from pathlib import Path

METRICS = (
    "step",
    "loss",
    "lm_loss",
    "mtp_loss",
    "balance_loss",
    "lr",
    "mtp_scale",
    "tokens",
    "tokens_per_s",
    "packing_ratio",
    "moe_imbalance",
)


class MetricsLog:
    """Rows of ``METRICS`` to ``metrics.csv`` (and TensorBoard); on resume, rows after the
    checkpoint's step are dropped, so the file reads as one uninterrupted run."""

    def __init__(self, folder: Path, resume_step: int, tensorboard: bool) -> None:
        self.path = folder / "metrics.csv"
        rows = []
        if resume_step and self.path.is_file():
            with self.path.open() as file:
                rows = [r for r in csv.DictReader(file) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as file:
            writer = csv.DictWriter(file, METRICS)
            writer.writeheader()
            writer.writerows(rows)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as file:
            csv.DictWriter(file, METRICS).writerow({k: row.get(k, "") for k in METRICS})
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and value is not None:
                    self.writer.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(folder: str | Path) -> list[dict[str, float]]:
    """The rows of a stage's ``metrics.csv`` as floats (empty fields dropped)."""
    with (Path(folder) / "metrics.csv").open() as file:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(file)]
