"""``omni eval lm-eval --model PATH --data MANIFEST --tasks ...``: the text directions through
lm-evaluation-harness (``training.lm_eval_omni``), with the chat template applied; writes
``OUT/lm-eval.json``."""

from __future__ import annotations

import argparse

TASK_NAMES = ("omni_translate_en_ko", "omni_translate_ko_en")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="pipeline folder")
    parser.add_argument("--data", required=True, help="toy-world manifest.jsonl")
    parser.add_argument("--split", default="test", help="test, novel or unseen")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), help="task names")
    parser.add_argument("--limit", type=int, default=None, help="samples per task")
    parser.add_argument("--out", required=True, help="folder for lm-eval.json and the data")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from omni.resources import shipped_path

    unknown = sorted(set(args.tasks) - set(TASK_NAMES))
    if unknown:
        raise ValueError(f"unknown lm-eval tasks {unknown}; the shipped tasks are {TASK_NAMES}")
    if not (Path(args.model) / "config.json").is_file():
        raise ValueError(f"--model {args.model} is not a saved pipeline folder (no config.json)")
    from training.lm_eval_omni import evaluate, export_text_directions

    out = Path(args.out)
    exported = export_text_directions(args.data, args.split, out / "data")
    chosen = {name: exported[name] for name in args.tasks}
    results = evaluate(args.model, chosen, shipped_path("configs/lm-eval"), args.limit)
    (out / "lm-eval.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0
