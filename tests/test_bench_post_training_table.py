"""``benchmarks/bench_post_training.py --table`` prints each run's held-out gain per split, and
counts a run as raising held-out reward only when every seed's paired gain is positive."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_post_training import markdown  # noqa: E402


def _split(before: list[float], after: list[float]) -> dict:
    gains = [a - b for a, b in zip(after, before, strict=True)]
    mean = sum(gains) / len(gains)
    return {
        "before": {"mean": sum(before) / len(before)},
        "after": {"mean": sum(after) / len(after)},
        "gain": {"mean": mean, "sd": 0.01, "values": gains},
        "raised_in_every_seed": all(g > 0 for g in gains),
    }


def test_the_table_has_one_row_per_run_and_split_with_its_settings():
    report = {
        "results": {
            "vqa": {
                "simper-lr1e-5": {
                    "loss": "simper",
                    "learning_rate": 1e-5,
                    "settings": {"micro_batch": 16},
                    "held_out": {
                        "test": _split([0.5, 0.5], [0.6, 0.55]),
                        "novel": _split([0.5, 0.5], [0.6, 0.45]),
                    },
                },
                "gspo-clip": {
                    "loss": "gspo",
                    "learning_rate": 1e-5,
                    "settings": {"micro_batch": 16, "clip_range": [0.03, 0.04]},
                    "held_out": {"test": _split([0.5, 0.5], [0.4, 0.55])},
                },
            }
        }
    }
    rows = markdown(report).splitlines()[2:]
    assert rows[0].startswith(
        "| vqa | simper-lr1e-5 | simper | 1e-05 | 16 | the loss's own | test | 0.500 |"
    )
    assert rows[0].endswith("| +0.100, +0.050 | **yes** |")
    assert rows[1].endswith("| +0.100, -0.050 | no |")
    assert rows[2].startswith("| vqa | gspo-clip | gspo | 1e-05 | 16 | 0.03 / 0.04 | test |")
    assert rows[2].endswith("| -0.100, +0.050 | no |")
    assert len(rows) == 3
