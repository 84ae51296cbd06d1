"""Issue 18's experiments: does a short post-training loop raise held-out verifiable reward?

The policy is the shipped default model. Two toy-world tasks where it is imperfect:
``vqa`` (a text answer, rewarded by exact match) and ``draw`` (an image answer, decoded to
pixels and rewarded by the pixel checker's attribute accuracy). Each method runs
``--rounds`` rounds of SnapPO's generate -> reward -> train on ``--train-prompts`` prompts of
the world's ``train`` split, ``--group-size`` samples each; it is judged on
``--held-out-prompts`` prompts of each ``--held-out-splits`` split (``test``: prompts it never
trained on, from the training distribution; ``novel``: colour-shape pairs the model never saw
in training), as the mean verifiable reward of ``--eval-samples`` samples per prompt at the
sampling temperature. Every method runs with 3 seeds (sampling and training seeds); the
held-out figure before training is measured with the same evaluation seeds, so each seed's
gain is paired.

Methods: ``agapo`` (RL: leave-one-out advantages, all-wrong groups pushed down), ``gspo``
(RL, sequence-level ratio), ``dpo`` (iterative DPO with an NLL term on the winner), ``simper``
and ``grouper`` (preference, no reference model).

Every artefact goes through the content-hashed snapshot store under ``--work``, so a run
stopped anywhere resumes where it stopped when started again with the same arguments.
The cost of one loop iteration (samples/s in generate, rewards/s, training tokens/s, and the
seconds in each part) is recorded from the first round of each method that drew its own
samples (a round found in the store has no timings); for a clean figure run a fresh seed
alone on a quiet machine, e.g. ``--seeds 99 --rounds 1 --methods gspo``.

The figures in ``bench_post_training.json`` came from one command per run (``--label`` names a
second run of a method), each with ``--work runs/post --threads 2 --held-out-splits test novel``
and ``--tasks vqa --train-prompts 384 --prompts-per-round 128 --held-out-prompts 128
--rounds 3 --eval-samples 8``:

    --methods gspo --learning-rate 2e-5 --micro-batch 32
    --methods dpo --learning-rate 1e-5 --micro-batch 16
    --methods simper --learning-rate 3e-5 --micro-batch 16
    --methods simper --label simper-lr1e-5 --learning-rate 1e-5 --micro-batch 16
    --methods grouper --learning-rate 3e-6 --micro-batch 4
    --methods gspo --label gspo-clip3e-2 --learning-rate 2e-5 --micro-batch 32 --clip-range 3e-2 4e-2

and for drawing, ``--tasks draw --train-prompts 64 --prompts-per-round 32 --held-out-prompts 32
--rounds 2 --eval-samples 4`` with:

    --methods gspo --learning-rate 4e-5 --micro-batch 8
    --methods gspo --label gspo-mb16 --learning-rate 4e-5 --micro-batch 16
    --methods dpo --learning-rate 1e-5 --micro-batch 16
    --methods grouper --learning-rate 1e-5 --micro-batch 4
    --methods gspo --label gspo-clip3e-2 --learning-rate 1e-5 --micro-batch 16 --clip-range 3e-2 4e-2

The pilots that chose those settings (``bench_post_training_pilots.json``) ran the same way
with ``--held-out-splits validation --seeds 0 1 --work runs/pilot``; ``--table`` prints a
JSON's figures as the docs table. A smoke test:

    .venv/bin/python benchmarks/bench_post_training.py --work /tmp/post --tasks vqa \\
        --methods gspo --seeds 0 --rounds 1 --train-prompts 4 --held-out-prompts 4 \\
        --out /tmp/post.json

Figures go to ``benchmarks/bench_post_training.json`` beside this script; a run of some
``--tasks`` and ``--methods`` replaces only their entries, each with the settings it ran with.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.post.generate_stage import GenerateSettings, run_generate_stage
from training.post.loop import run_loop
from training.post.manifest_prompts import manifest_chats
from training.post.omni_policy import omni_prompt, omni_sampler
from training.post.policy import load_policy, save_policy
from training.post.reward_stage import run_reward_stage
from training.post.snapshots import SnapshotStore
from training.post.train_stage import TrainSettings
from training.toyworld.tasks import generate as generate_world

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# task -> (reward, answer budget in tokens)
TASKS = {"vqa": ("exact_match", 16), "draw": ("drawn_objects", 80)}
# method -> the train stage's loss and the settings it needs beyond the shared ones
# (default learning rates from one pilot loop per method on the previous default model; the
# runs on the model shipped now pass theirs, chosen on the validation split, explicitly)
METHODS = {
    "agapo": {"loss": "agapo", "learning_rate": 2e-5},
    "gspo": {"loss": "gspo", "learning_rate": 2e-5},
    "dpo": {"loss": "dpo", "nll_weight": 1.0, "learning_rate": 3e-5},
    "simper": {"loss": "simper", "learning_rate": 3e-5},
    "grouper": {"loss": "grouper", "learning_rate": 3e-5},
}


def _prompts(model, tokenizer, manifest: Path, task: str, split: str, n: int):
    chats, modality = manifest_chats(manifest, task, split, n)
    return [omni_prompt(model, tokenizer, m, meta) for m, meta in chats], modality


def held_out_reward(store, key, prompts, sampler, reward: str, samples: int, seed: int) -> float:
    """Mean reward of ``samples`` samples per held-out prompt (cached like any rollout)."""
    sampled = run_generate_stage(store, key, prompts, sampler, GenerateSettings(samples, seed))
    scored = run_reward_stage(store, sampled.key, {reward: 1.0})
    return float(store.read("rewards", scored.key).tensors["rewards"].mean())


def _spread(values: list[float]) -> dict:
    return {
        "mean": round(statistics.mean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "values": [round(v, 4) for v in values],
    }


def train_settings(args, method: str, seed: int) -> TrainSettings:
    """The train stage's settings of ``method`` under this run's arguments."""
    chosen = {**METHODS[method], **({"learning_rate": args.lr} if args.lr else {})}
    clip = tuple(args.clip_range) if args.clip_range else None
    return TrainSettings(
        epochs=args.epochs, micro_batch=args.micro_batch, seed=seed, clip_range=clip, **chosen
    )


def run_method(args, store, init, task, method, train, held, sampler) -> dict:
    """One method over every seed: the held-out reward before and after on each split of
    ``held`` (split -> prompts), the gains, and the cost of a first round."""
    reward, _ = TASKS[task]
    before = {split: [] for split in held}
    after = {split: [] for split in held}
    costs = None
    for seed in args.seeds:
        eval_seed = 1000 + seed
        for split, prompts in held.items():
            before[split].append(
                held_out_reward(store, init, prompts, sampler, reward, args.eval_samples, eval_seed)
            )
        settings = train_settings(args, method, seed)
        started = time.perf_counter()
        rounds = run_loop(
            store,
            init,
            train,
            sampler,
            {reward: 1.0},
            args.rounds,
            GenerateSettings(args.group_size, seed),
            settings,
            prompts_per_round=args.prompts_per_round,
        )
        final = rounds[-1].next_policy
        for split, prompts in held.items():
            after[split].append(
                held_out_reward(
                    store, final, prompts, sampler, reward, args.eval_samples, eval_seed
                )
            )
        # the first round whose samples this run drew (a round found done has no timings)
        costs = costs or next((r.figures for r in rounds if r.computed["generate"]), None)
        moved = ", ".join(f"{s} {before[s][-1]:.3f} -> {after[s][-1]:.3f}" for s in held)
        print(
            f"{task} {method} seed {seed}: held-out {moved}; "
            f"train reward by round {[round(r.mean_reward, 3) for r in rounds]} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    held_out = {}
    for split in held:
        gains = [a - b for a, b in zip(after[split], before[split], strict=True)]
        held_out[split] = {
            "before": _spread(before[split]),
            "after": _spread(after[split]),
            "gain": _spread(gains),
            "raised_in_every_seed": all(g > 0 for g in gains),
        }
    return {
        "held_out": held_out,
        "learning_rate": settings.learning_rate,
        "first_round_cost": costs and {k: round(v, 3) for k, v in costs.items()},
    }


def markdown(report: dict) -> str:
    """The docs table: per task and run, the held-out gain on each split over the seeds."""
    lines = [
        "| task | run | loss | lr | micro-batch | clip range | split | before | after "
        "| gain, mean +- sd | gain per seed | raised in every seed |",
        "|" + " --- |" * 12,
    ]
    for task, runs in report["results"].items():
        for label, entry in runs.items():
            settings = entry["settings"]
            clip = settings.get("clip_range")
            clip = f"{clip[0]:g} / {clip[1]:g}" if clip else "the loss's own"
            for split, figures in entry["held_out"].items():
                gain = figures["gain"]
                lines.append(
                    f"| {task} | {label} | {entry.get('loss', label)} | "
                    f"{entry['learning_rate']:g} | {settings['micro_batch']} | {clip} | {split} | "
                    f"{figures['before']['mean']:.3f} | {figures['after']['mean']:.3f} | "
                    f"{gain['mean']:+.3f} +- {gain['sd']:.3f} | "
                    f"{', '.join(f'{g:+.3f}' for g in gain['values'])} | "
                    f"{'**yes**' if figures['raised_in_every_seed'] else 'no'} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ASSETS / "default-model"))
    parser.add_argument("--work", default="runs/post", help="world + snapshot store")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["vqa", "draw"])
    parser.add_argument(
        "--methods", nargs="+", choices=sorted(METHODS), default=["agapo", "dpo", "simper"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--world-samples", type=int, default=4000, help="toy world size")
    parser.add_argument("--train-prompts", type=int, default=32)
    parser.add_argument(
        "--prompts-per-round",
        type=int,
        help="each round samples the next N of the training prompts (default: all, every round)",
    )
    parser.add_argument("--held-out-prompts", type=int, default=64, help="per held-out split")
    parser.add_argument(
        "--held-out-splits",
        nargs="+",
        default=["test", "novel"],
        choices=["validation", "test", "novel"],
        help="held-out splits: test (unseen prompts of the training distribution), novel "
        "(colour-shape pairs no stage trained on)",
    )
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--eval-samples", type=int, default=4, help="samples per held-out prompt")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--learning-rate", dest="lr", type=float, help="one learning rate for every method"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument(
        "--clip-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="gspo's ratio clipping"
    )
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--label", help="the run's name in the JSON (default: the method's); one method only"
    )
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    parser.add_argument("--table", action="store_true", help="print --out as markdown, run none")
    args = parser.parse_args()
    out = Path(args.out)
    if args.table:
        print(markdown(json.loads(out.read_text(encoding="utf-8"))), end="")
        return
    if args.label and len(args.methods) != 1:
        parser.error("--label names the run of one method; give one --methods")
    for method in args.methods:  # bad settings stop here, before the world or any sampling
        try:
            train_settings(args, method, seed=0)
        except ValueError as error:
            parser.error(str(error))
    torch.set_num_threads(args.threads)

    work = Path(args.work)
    manifest = work / "world" / "manifest.jsonl"
    if not manifest.exists():
        generate_world(work / "world", args.world_samples, seed=0, tasks=sorted(TASKS))
    store = SnapshotStore(work / "store")
    init = save_policy(store, AutoModelForCausalLM.from_pretrained(args.model), source=args.model)
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"results": {}}
    skipped = ("out", "work", "tasks", "table", "label")
    settings = {k: v for k, v in vars(args).items() if k not in skipped}
    policy = load_policy(store, init)
    tokenizer = AutoTokenizer.from_pretrained(store.folder("policies", init))
    for task in args.tasks:
        train, modality = _prompts(policy, tokenizer, manifest, task, "train", args.train_prompts)
        held = {
            split: _prompts(policy, tokenizer, manifest, task, split, args.held_out_prompts)[0]
            for split in args.held_out_splits
        }
        sampler = omni_sampler(modality, TASKS[task][1], args.temperature)
        for method in args.methods:
            figures = run_method(args, store, init, task, method, train, held, sampler)
            # a (task, method) entry is replaced whole: its figures and the run's settings
            entry = report["results"].setdefault(task, {})
            entry[args.label or method] = {**figures, "loss": method, "settings": settings}
            out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
