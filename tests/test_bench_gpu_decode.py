"""``benchmarks/bench_gpu_decode.py``, the prepared GPU check, runs end to end on the CPU at its
smoke size: it trains, saves and reloads the pipeline in bfloat16, and times every arm on
answers equal to transformers' own."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_script_runs_at_smoke_size_and_reports_every_figure(tmp_path):
    out = tmp_path / "gpu.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_gpu_decode.py"),
            "--smoke",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    figures = json.loads(out.read_text())
    text = figures["text"]
    assert set(text["tokens_per_s"]) >= {"hf_generate", "omni_plain", "omni_k1", "omni_k4"}
    assert text["ratio_to_hf_generate"]["hf_generate"] == 1.0
    assert text["identical_output"] is True
    assert text["best_k"] in {"omni_k1", "omni_k2", "omni_k3", "omni_k4"}
    audio = figures["first_audio"]
    assert 0 < audio["first_audio_chunk_s_median"] <= audio["whole_answer_s_median"]
    assert figures["image_decode_8_steps"]["batch_16"]["s_per_image"] > 0
    assert figures["backbone_parameters"] > 0
