"""``bench_decode.py`` merges a run of some models or parts into the committed figures: what it
measured is replaced, what it did not is kept, and the run is recorded."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from decode_report import markdown, merged  # noqa: E402


def _zero(ratio: float) -> dict:
    return {
        "ratio_to_omni_plain": ratio,
        "ratio_by_pass": [ratio, ratio],
        "median_ratio_per_prompt": ratio,
        "drafts": 3,
        "accepted": 0,
        "paused_steps": 90,
        "tokens": 100,
        "identical_output": True,
    }


def _report(tmp_path: Path) -> Path:
    decoding = {
        "text@1": {
            "ratio_to_hf_generate": {
                "omni_plain": 1.1,
                "omni_k1": 1.5,
                "omni_auto": 1.4,
                "omni_compiled": 2.0,
            },
            "acceptance_by_depth": {"omni_auto": [1.0]},
            "identical_output": {"omni_plain": True},
        }
    }
    old = {
        "arguments": {"parts": ["decoding", "zero"]},
        "models": {
            "a": {
                "decoding": decoding,
                "best_k": {"text@1": "omni_k1"},
                "zero_acceptance": _zero(0.9),
            },
            "b": {
                "decoding": decoding,
                "best_k": {"text@1": "omni_k1"},
                "zero_acceptance": _zero(0.8),
            },
        },
    }
    out = tmp_path / "bench.json"
    out.write_text(json.dumps(old))
    return out


def test_a_run_of_one_part_replaces_only_that_part_of_the_models_it_measured(tmp_path):
    out = _report(tmp_path)
    run = {"arguments": {"parts": ["zero"]}, "models": {"a": {"zero_acceptance": _zero(1.01)}}}
    report = merged(out, run, full=False)
    assert report["models"]["a"]["zero_acceptance"]["ratio_to_omni_plain"] == 1.01
    assert report["models"]["a"]["best_k"] == {"text@1": "omni_k1"}  # decoding kept
    assert report["models"]["b"]["zero_acceptance"]["ratio_to_omni_plain"] == 0.8
    assert report["updates"] == [{"parts": ["zero"]}]
    table = markdown(report)
    assert "| a | 1.010x | 1.010x, 1.010x | 1.010x |" in table
    assert "| b | 0.800x |" in table


def test_a_part_not_measured_again_is_dropped_only_when_the_run_measured_it(tmp_path):
    out = _report(tmp_path)
    run = {"arguments": {"parts": ["decoding", "zero"]}, "models": {"a": {"decoding": {}}}}
    report = merged(out, run, full=False)
    # the run measured zero acceptance for "a" and wrote none (e.g. --zero-prompts 0): gone
    assert "zero_acceptance" not in report["models"]["a"]
    assert report["models"]["a"]["decoding"] == {}


def test_a_full_run_replaces_the_report(tmp_path):
    out = _report(tmp_path)
    run = {"arguments": {"parts": ["zero"]}, "models": {"c": {"zero_acceptance": _zero(1.0)}}}
    assert merged(out, run, full=True) is run
    assert merged(tmp_path / "missing.json", run, full=False) is run
