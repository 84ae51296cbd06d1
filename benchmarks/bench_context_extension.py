"""Context extension at micro scale: NIAH at 4x the pretraining length, and what rehearsal
of short samples does to short-context validation loss.

1. pretrain a text-only micro model at 128 tokens on toy-world translation samples plus
   short haystacks (<= 128 tokens);
2. extend it to 512 tokens (YaRN x4, configs/context-extension.yaml) twice: with the
   recipe's rehearsal share of short toy-world samples, and without any (the comparison);
3. report NIAH accuracy over lengths x depths (heatmaps + JSON) and the short-context
   validation loss (toy-world validation split, 128-token rows) before and after each.

    python benchmarks/bench_context_extension.py --out runs/context-extension
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from omni.presets import build_micro
from omni.processor import OmniProcessor
from training.curriculum import Curriculum, MixtureEntry, Recipe, apply_rope_scaling
from training.niah import evaluate_niah, plot_heatmap, write_long_manifest
from training.toyworld import generate
from training.trainer import TrainOptions, train_stage, validation_loss

ROOT = Path(__file__).resolve().parents[1]
SHORT, LONG = 128, 512
TEXT = ["translate"]  # text-only at this scale: the CPU budget goes to steps, not pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/context-extension")
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--extend-steps", type=int, default=150)
    parser.add_argument("--trials", type=int, default=10, help="haystacks per NIAH cell")
    parser.add_argument("--depths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    world = out / "world" / "manifest.jsonl"
    if not world.is_file():
        generate(out / "world", 3000, seed=0, tasks=TEXT)
    model, processor = build_micro(
        "micro-llama",
        encoders={"image": {"type": "vision", "model_name": "micro-vit", "token_budget": 4}},
    )
    tokenizer = processor.tokenizer
    short = out / "short" / "manifest.jsonl"
    if not short.is_file():
        write_long_manifest(out / "short", 4000, tokenizer, 48, SHORT, seed=1)
    long = out / "long" / "manifest.jsonl"
    if not long.is_file():
        write_long_manifest(out / "long", 4000, tokenizer, 48, LONG, seed=2)
    manifests = {"toyworld": str(world), "short": str(short), "long": str(long)}
    options = TrainOptions(resume=True, progress=True)

    pretrain = Recipe(
        name="pretrain-short",
        mixture=[MixtureEntry("toyworld", 1.0, tasks=TEXT), MixtureEntry("short", 1.0)],
        trainable=["embeddings", "backbone", "mtp"],
        sequence_length=SHORT,
        rows_per_step=8,
        micro_rows=8,
        lookahead=32,
        steps=args.pretrain_steps,
        lr=2e-3,
        warmup_steps=50,
        checkpoint_every=100,
    )
    base = out / "pretrain-short" / "final"
    if not (base / "config.json").is_file():
        train_stage(model, processor, pretrain, manifests, out / "pretrain-short", options)
        model.save_pretrained(base)
    report: dict[str, dict] = {}
    lengths, depths = [SHORT, 2 * SHORT, LONG], args.depths

    def measure(name: str, trained) -> None:
        trained.eval()
        processor = OmniProcessor.from_model(trained, tokenizer)
        val = validation_loss(trained, processor, world, SHORT, rows=16, tasks=TEXT)
        niah = evaluate_niah(trained, processor, lengths, depths, args.trials)
        plot_heatmap(niah, out / f"niah-{name}.png", f"NIAH accuracy: {name}")
        report[name] = {"short_validation_loss": val, "niah": niah}
        at_long = niah["accuracy"][str(LONG)]
        print(
            f"{name}: short val loss {val:.4f}, NIAH@{LONG} {sum(at_long.values()) / len(at_long):.2f}"
        )
        (out / "report.json").write_text(json.dumps(report, indent=2))

    from omni.modeling import OmniForConditionalGeneration

    measure("pretrained", OmniForConditionalGeneration.from_pretrained(base))
    extension = Curriculum.load(ROOT / "configs" / "context-extension.yaml").stages[0]
    rehearsal = [
        replace(m, tasks=TEXT) if m.manifest == "toyworld" else m for m in extension.mixture
    ]
    extension = replace(
        extension,
        mixture=rehearsal,
        steps=args.extend_steps,
        sequence_length=LONG,
        rope={**extension.rope, "original_max_position_embeddings": SHORT},
        checkpoint_every=50,
    )
    variants = {
        "rehearsal": extension,
        "no-rehearsal": replace(
            extension, mixture=[m for m in extension.mixture if m.manifest == "long"]
        ),
    }
    for name, recipe in variants.items():
        folder = out / f"extension-{name}"
        trained = OmniForConditionalGeneration.from_pretrained(base)
        apply_rope_scaling(trained, recipe.rope)
        if not (folder / "final" / "config.json").is_file():
            processor = OmniProcessor.from_model(trained, tokenizer)
            train_stage(
                trained,
                processor,
                replace(recipe, name=f"extension-{name}"),
                manifests,
                folder,
                options,
            )
            trained.save_pretrained(folder / "final")
        measure(name, OmniForConditionalGeneration.from_pretrained(folder / "final"))
    before = report["pretrained"]["short_validation_loss"]
    for name in variants:
        after = report[name]["short_validation_loss"]
        print(
            f"{name}: short-context validation loss {before:.4f} -> {after:.4f} "
            f"({100 * (after - before) / before:+.1f}%)"
        )


if __name__ == "__main__":
    main()
