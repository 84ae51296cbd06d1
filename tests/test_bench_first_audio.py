"""``benchmarks/bench_first_audio.py`` times a real stream: the first audio chunk arrives before
the answer ends, and a manifest without spoken requests is refused before any model loads."""

import json
import sys
from pathlib import Path

import pytest

from omni.presets import build_micro_pipeline

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from bench_first_audio import main, measure  # noqa: E402


def _tts_record(text: str) -> dict:
    return {
        "id": "tts-0",
        "task": "tts",
        "split": "test",
        "turns": [
            {"role": "user", "segments": [{"type": "text", "text": f"say this aloud: {text}"}]},
            {"role": "assistant", "segments": [{"type": "text", "text": text}]},
        ],
        "meta": {"lang": "en", "text": text},
    }


def test_the_first_chunk_comes_before_the_whole_spoken_answer():
    pipe = build_micro_pipeline(voices=("en-f1",))
    records = [_tts_record("a red circle"), _tts_record("a blue square")]
    figures = measure(pipe, records, {"speculative": False, "max_new_tokens": 40})
    assert figures["n"] == 2 and figures["answers_without_audio"] == 0
    assert 0 < figures["first_audio_chunk_s_median"] < figures["whole_answer_s_median"]
    assert 0 < figures["first_chunk_over_whole_answer"] < 1
    assert figures["generate_s_median"] > 0 and figures["stream_over_generate"] > 0


def test_a_manifest_without_spoken_requests_is_refused(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    record = _tts_record("a red circle")
    record["task"] = "translate"
    manifest.write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=r"has no test samples of \['tts', 'spoken_vqa'\]"):
        main(["--data", str(manifest), "--out", str(tmp_path / "out.json")])
    with pytest.raises(ValueError, match="--split must be one of"):
        main(["--data", str(manifest), "--split", "nope"])
