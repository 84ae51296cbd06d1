"""Time to the first audio chunk through ``omni.stream``, against the whole spoken answer.

The requests are a toy world's spoken ones, as a user of the default model sends them: TTS
("say this aloud") and spoken answers to spoken questions, from the chosen split. Each request
is streamed once and answered once by ``generate``, in turn; the figures are the median
seconds to the first ``audio`` event and to the ``done`` event of the same stream, and two
ratios with baselines taken in the same run: the first chunk over the whole streamed answer,
and the whole streamed answer over ``generate``'s (what streaming costs), on one thread.

.venv/bin/python benchmarks/bench_first_audio.py --data runs/default/data/toyworld/manifest.jsonl
.venv/bin/python benchmarks/bench_first_audio.py --data M --model DIR --n 20 --out F.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

TASKS = ("tts", "spoken_vqa")


def stream_times(pipe, prompt, options: dict) -> tuple[float, float]:
    """Seconds to the first audio chunk (the whole answer when none comes) and to the end."""
    start = time.perf_counter()
    first = None
    for event in pipe.stream(prompt, "audio", **options):
        if event.kind == "audio" and first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (total if first is None else first), total


def measure(pipe, records: list[dict], options: dict) -> dict:
    from training.matrix import prompt_of

    stream_times(pipe, prompt_of(records[0]), options)  # warm-up
    firsts, totals, generated, silent = [], [], [], 0
    for record in records:
        prompt = prompt_of(record)
        first, total = stream_times(pipe, prompt, options)
        start = time.perf_counter()
        pipe.generate(prompt, out_modality="audio", **options)
        generated.append(time.perf_counter() - start)
        firsts.append(first)
        totals.append(total)
        silent += first == total
    return {
        "n": len(records),
        "first_audio_chunk_s_median": round(statistics.median(firsts), 4),
        "first_audio_chunk_s_max": round(max(firsts), 4),
        "whole_answer_s_median": round(statistics.median(totals), 4),
        "first_chunk_over_whole_answer": round(
            statistics.median(firsts) / statistics.median(totals), 3
        ),
        "generate_s_median": round(statistics.median(generated), 4),
        "stream_over_generate": round(statistics.median(totals) / statistics.median(generated), 3),
        "answers_without_audio": silent,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="toy-world manifest.jsonl")
    parser.add_argument("--model", default=None, help="pipeline folder (default: the shipped one)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=30, help="requests per task")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON figures (default: bench_first_audio.json beside this)")
    args = parser.parse_args(argv)

    import torch

    import omni
    from training.matrix import read_split

    records = read_split(args.data, args.split)  # a bad path or split fails before loading
    chosen = {task: [r for r in records if r["task"] == task][: args.n] for task in TASKS}
    missing = [task for task, rows in chosen.items() if not rows]
    if missing:
        raise ValueError(f"{args.data} has no {args.split} samples of {missing}")
    torch.set_num_threads(args.threads)
    pipe = omni.load(args.model)
    options = {"speculative": False}  # the default model's fastest setting (its card)
    figures = {
        "model": args.model or "shipped default",
        "split": args.split,
        "threads": args.threads,
        "options": options,
        "tasks": {task: measure(pipe, rows, options) for task, rows in chosen.items()},
    }
    out = Path(args.out) if args.out else Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
