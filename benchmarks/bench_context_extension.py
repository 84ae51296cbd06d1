"""Context extension at micro scale: NIAH at 1x, 2x and 4x the pretraining length, and what
rehearsal of short samples does to short-context validation loss.

1. pretrain a text-only micro model (micro-llama: 2 layers, width 64) at ``--short`` tokens on
   the toy-world translation samples that fit that length, language-modelled whole (every
   turn has loss), plus needle-in-a-haystack samples (48 .. ``--short`` tokens, loss on the
   answer), so the base model learns retrieval (copy the needle's number) at its own length;
2. extend it to 4x that length with the recipe's RoPE scaling (configs/context-extension.yaml:
   YaRN x4, by parts: only frequencies that never complete a turn within the original length
   are interpolated) twice: with the recipe's rehearsal share of the short translation
   samples, and without any (the comparison); both train on the same haystacks (48 .. 4x);
3. report NIAH accuracy over lengths x depths (a heatmap PNG per model, and report.json) for
   the base model, the base model with the RoPE scaling but no training, and both extended
   models, and the short-context validation loss before and after each extension: every
   token of held-out translation samples (validation split) in ``--short``-token rows, and
   the answer span alone (``short_validation_answer_loss``).

    python benchmarks/bench_context_extension.py --out runs/context-extension

About 5 minutes of one free CPU core at the defaults. Finished stages are reused on a rerun.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from omni.modeling import OmniForConditionalGeneration
from omni.presets import build_micro
from omni.processor import OmniProcessor
from training.curriculum import Curriculum, MixtureEntry, Recipe, apply_rope_scaling
from training.niah import evaluate_niah, plot_heatmap, write_long_manifest, write_short_manifest
from training.toyworld import generate
from training.trainer import TrainOptions, train_stage, validation_loss

ROOT = Path(__file__).resolve().parents[1]
TEXT = ["translate"]  # text-only at this scale: the CPU budget goes to steps, not pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/context-extension")
    parser.add_argument(
        "--results",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    parser.add_argument("--short", type=int, default=64, help="pretraining length (tokens)")
    parser.add_argument("--pretrain-steps", type=int, default=1000)
    parser.add_argument("--extend-steps", type=int, default=1000)
    parser.add_argument(
        "--extend-lr", type=float, default=None, help="extension peak lr (default: the recipe's)"
    )
    parser.add_argument(
        "--rehearsal-share",
        type=float,
        default=None,
        help="weight of the short samples in the extension mixture (default: the recipe's)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=("rehearsal", "no-rehearsal"),
        default=["rehearsal", "no-rehearsal"],
        help="extensions to train and measure",
    )
    parser.add_argument("--trials", type=int, default=20, help="haystacks per NIAH cell")
    parser.add_argument("--depths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--loss-on",
        choices=("assistant", "all"),
        default="assistant",
        help="tokens with loss in every stage (the translation samples keep loss on every token)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    short_length, long_length = args.short, 4 * args.short
    out = Path(args.out)
    model, processor = build_micro("micro-llama", encoders={})
    tokenizer = processor.tokenizer
    # Translation samples that fit the short length, every token with loss (world-short-lm):
    # task data, rehearsal share and the short-context validation set; the same samples with
    # loss on the answer only (world-short) measure the answer span alone.
    world = out / "world-short-lm" / "manifest.jsonl"
    answers = out / "world-short" / "manifest.jsonl"
    if not world.is_file():
        full = out / "world" / "manifest.jsonl"
        if not full.is_file():
            full = generate(out / "world", 12000, seed=0, tasks=TEXT)
        write_short_manifest(full, answers, processor, short_length, whole=False)
        kept = write_short_manifest(full, world, processor, short_length)
        print(f"{kept} toy-world samples fit {short_length} tokens")
    short = out / "short" / "manifest.jsonl"
    if not short.is_file():
        write_long_manifest(out / "short", 6000, tokenizer, 48, short_length, seed=1)
    long = out / "long" / "manifest.jsonl"
    if not long.is_file():
        write_long_manifest(out / "long", 4000, tokenizer, 48, long_length, seed=2)
    manifests = {"toyworld": str(world), "short": str(short), "long": str(long)}
    options = TrainOptions(resume=True, progress=True, tensorboard=False)

    # The base model learns the task mix, retrieval included, at its own (short) length.
    pretrain = Recipe(
        name="pretrain-short",
        mixture=[MixtureEntry("toyworld", 1.0, tasks=TEXT), MixtureEntry("short", 1.0)],
        trainable=["embeddings", "backbone", "mtp"],
        sequence_length=short_length,
        loss_on=args.loss_on,
        rows_per_step=8,
        micro_rows=8,
        lookahead=32,
        steps=args.pretrain_steps,
        lr=2e-3,
        warmup_steps=30,
        checkpoint_every=250,
    )
    base = out / "pretrain-short" / "final"
    if not (base / "config.json").is_file():
        torch.manual_seed(0)
        train_stage(model, processor, pretrain, manifests, out / "pretrain-short", options)
        model.save_pretrained(base)
    recipe = Curriculum.load(ROOT / "configs" / "context-extension.yaml").stages[0]
    report: dict[str, dict] = {
        "setup": {
            "model": "micro-llama (2 layers, width 64)",
            "short_length": short_length,
            "long_length": long_length,
            "pretrain_steps": args.pretrain_steps,
            "extend_steps": args.extend_steps,
            "extend_lr": args.extend_lr or recipe.lr,
            "rehearsal_share": args.rehearsal_share
            or sum(m.weight for m in recipe.mixture if m.manifest == "toyworld"),
            "loss_on": args.loss_on,
            "rope": {**recipe.rope, "original_max_position_embeddings": short_length},
            "short_validation_loss": (
                f"mean LM loss (nats/token) over every token (system, user and assistant turns) "
                f"of held-out toy-world translation samples (validation split), packed in "
                f"{short_length}-token rows, 64 rows; short_validation_answer_loss: the same "
                f"rows, assistant (translation) tokens only"
            ),
        }
    }
    lengths, depths = [short_length, 2 * short_length, long_length], args.depths

    def measure(name: str, trained: OmniForConditionalGeneration) -> None:
        trained.eval()
        processor = OmniProcessor.from_model(trained, tokenizer)
        # Every token of held-out translations (the turns' loss flags), and the answer span.
        val = validation_loss(trained, processor, world, short_length, rows=64, tasks=TEXT)
        answer = validation_loss(trained, processor, answers, short_length, rows=64, tasks=TEXT)
        niah = evaluate_niah(trained, processor, lengths, depths, args.trials)
        plot_heatmap(niah, out / f"niah-{name}.png", f"NIAH accuracy: {name}")
        means = {n: sum(row.values()) / len(row) for n, row in niah["accuracy"].items()}
        report[name] = {
            "short_validation_loss": val,
            "short_validation_answer_loss": answer,
            "niah": niah,
            "mean_accuracy": means,
        }
        shown = ", ".join(f"{n}: {m:.2f}" for n, m in means.items())
        print(
            f"{name}: short val loss {val:.4f} (answer span {answer:.4f}); "
            f"NIAH mean accuracy by length {shown}"
        )
        (out / "report.json").write_text(json.dumps(report, indent=2))

    measure("pretrained", OmniForConditionalGeneration.from_pretrained(base))
    yarn_only = OmniForConditionalGeneration.from_pretrained(base)
    rope = {**recipe.rope, "original_max_position_embeddings": short_length}
    apply_rope_scaling(yarn_only, rope)
    measure("yarn-untrained", yarn_only)

    share = args.rehearsal_share
    rehearsal = [
        replace(m, tasks=TEXT, weight=m.weight if share is None else share)
        if m.manifest == "toyworld"
        else replace(m, weight=m.weight if share is None else 1.0 - share)
        for m in recipe.mixture
    ]
    extension = replace(
        recipe,
        mixture=rehearsal,
        steps=args.extend_steps,
        lr=args.extend_lr or recipe.lr,
        sequence_length=long_length,
        loss_on=args.loss_on,
        rope=rope,
        checkpoint_every=100,
    )
    variants = {
        "rehearsal": extension,
        "no-rehearsal": replace(
            extension, mixture=[m for m in extension.mixture if m.manifest == "long"]
        ),
    }
    variants = {name: stage for name, stage in variants.items() if name in args.variants}
    for name, stage in variants.items():
        folder = out / f"extension-{name}"
        if not (folder / "final" / "config.json").is_file():
            trained = OmniForConditionalGeneration.from_pretrained(base)
            apply_rope_scaling(trained, stage.rope)
            processor = OmniProcessor.from_model(trained, tokenizer)
            torch.manual_seed(0)
            stage = replace(stage, name=f"extension-{name}")
            train_stage(trained, processor, stage, manifests, folder, options)
            trained.save_pretrained(folder / "final")
        measure(name, OmniForConditionalGeneration.from_pretrained(folder / "final"))

    for key in ("short_validation_loss", "short_validation_answer_loss"):
        before = report["pretrained"][key]
        for name in ("yarn-untrained", *variants):
            after = report[name][key]
            change = (after - before) / before
            report[name][f"{key}_change"] = change
            print(f"{name}: {key} {before:.4f} -> {after:.4f} ({100 * change:+.1f}%)")
    report["setup"]["wall_s"] = time.perf_counter() - began
    (out / "report.json").write_text(json.dumps(report, indent=2))
    Path(args.results).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'report.json'} and {out}/niah-*.png")


if __name__ == "__main__":
    main()
