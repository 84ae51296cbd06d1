"""``omni train default --out DIR``: train (or reuse) every component, run the LM through the
whole curriculum with MTP, and assemble the pipeline folder ``DIR/pipeline``
(``training.default_run``). Run it again to resume; ``nohup ... &`` runs it in the background,
with ``DIR/run.log`` and ``DIR/timings.json`` on disk."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (data, components, lm, pipeline)")
    parser.add_argument(
        "--components", default=None, help="reuse components from this assets-like folder"
    )
    parser.add_argument("--recipe", default=None, help="curriculum YAML (default: the shipped one)")
    parser.add_argument("--samples", type=int, default=20000, help="toy-world samples")
    parser.add_argument("--long-samples", type=int, default=2000, help="long haystack samples")
    parser.add_argument(
        "--agentic-samples", type=int, default=6000, help="tool-use and safety samples"
    )
    parser.add_argument("--long-max-length", type=int, default=1000, help="longest haystack")
    parser.add_argument("--steps", type=int, default=None, help="override every LM stage's steps")
    parser.add_argument(
        "--component-steps", type=int, default=None, help="steps of each component trainer"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--style",
        choices=("classic", "varied"),
        default="varied",
        help="toy-world style (classic: the style the shipped components were trained on); "
        "every task is written, video included",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    from pathlib import Path

    from training.default_run import DefaultRun, omni_command, run_steps

    out = Path(args.out)
    if args.components is not None and not Path(args.components).is_dir():
        raise ValueError(f"--components {args.components} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    default = DefaultRun(
        out,
        components=Path(args.components) if args.components else None,
        recipe=args.recipe,
        samples=args.samples,
        agentic_samples=args.agentic_samples,
        long_samples=args.long_samples,
        long_max_length=args.long_max_length,
        steps=args.steps,
        component_steps=args.component_steps,
        seed=args.seed,
        style=args.style,
    )
    logging.basicConfig(level=logging.INFO)
    log = logging.getLogger("omni.train.default")
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(out / "run.log")  # appended to by every (resumed) run
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    timings_path = out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    try:
        for name, seconds in run_steps(default, omni_command(out / "run.log"), log.info).items():
            timings[name] = seconds or timings.get(name, 0.0)  # a skipped step keeps its time
        timings_path.write_text(json.dumps(timings, indent=2))
        log.info("pipeline ready: %s (seconds per step in %s)", out / "pipeline", timings_path)
    finally:
        log.removeHandler(handler)
        handler.close()
    return 0
