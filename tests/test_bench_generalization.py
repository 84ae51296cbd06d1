"""``benchmarks/bench_generalization.py --update`` re-measures some parts and keeps the rest."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from bench_generalization import updated  # noqa: E402


def test_update_replaces_only_what_was_measured():
    before = {
        "threads": 1,
        "components": {"image_tokenizer": "a", "speech_tokenizer": "old"},
        "probe_clips": 800,
        "test": {"image_path": {"same_scene": 0.4}, "speech": {"probe_cer": 0.9}},
        "unseen": {"image_path": {"same_scene": 0.3}, "speech": {"probe_cer": 0.95}},
    }
    now = {
        "threads": 2,
        "components": {"speech_tokenizer": "new"},
        "probe_clips": 400,
        "test": {"speech": {"probe_cer": 0.5}},
    }
    merged = updated(before, now)
    assert merged["components"] == {"image_tokenizer": "a", "speech_tokenizer": "new"}
    assert merged["threads"] == 2 and merged["probe_clips"] == 400
    assert merged["test"] == {"image_path": {"same_scene": 0.4}, "speech": {"probe_cer": 0.5}}
    assert merged["unseen"] == before["unseen"]  # not measured now: kept as it was
    assert before["test"]["speech"] == {"probe_cer": 0.9}  # the input is not changed
