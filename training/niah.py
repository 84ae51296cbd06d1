"""``omni eval niah``: needle in a haystack over context lengths x needle depths.

A haystack is toy-world captions (real sentences of the synthetic world); the needle is
"The secret number is NN." placed at a fraction ``depth`` of the haystack; the question
follows it. The model's answer is the candidate number (10..99) it gives the highest
log-likelihood, so accuracy is exact and chance is 1/90. The same generator writes the long
training samples of the context-extension stage (``--write-long``).

Writes ``niah.json`` (accuracy per length and depth) and ``niah.png`` (the heatmap).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

NUMBERS = [str(n) for n in range(10, 100)]
QUESTION = "What is the secret number?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Omni checkpoint folder to evaluate")
    parser.add_argument("--out", required=True, help="output folder (niah.json, niah.png)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--depths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--trials", type=int, default=10, help="haystacks per cell")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--write-long", action="store_true", help="write a long-sample training manifest instead"
    )
    parser.add_argument("--n", type=int, default=1000, help="samples for --write-long")
    parser.add_argument("--min-length", type=int, default=64, help="--write-long shortest")
    parser.add_argument("--max-length", type=int, default=1000, help="--write-long longest")


def _filler(rng: random.Random) -> str:
    import numpy as np

    from training.toyworld import describe, sample_scene

    scene = sample_scene(np.random.default_rng(rng.getrandbits(32)))
    text = describe(scene, "en", rng.randrange(2))
    return text[0].upper() + text[1:] + "."


def haystack_sample(
    tokenizer: Any, length: int, depth: float, number: str, rng: random.Random
) -> dict[str, Any]:
    """A manifest record: ~``length`` tokens of haystack with the needle at ``depth``."""
    from omni.sequence import Sample

    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth must lie in [0, 1], got {depth}")
    needle = f"The secret number is {number}."
    # 8 tokens cover the chat template (turn markers), the answer and the end token.
    floor = len(tokenizer.encode(f"{needle} {QUESTION}", add_special_tokens=False)) + 8
    if length < floor:
        raise ValueError(
            f"a haystack sample needs at least {floor} tokens (needle, question, chat "
            f"template, answer); asked for {length}"
        )
    budget = length - floor
    sentences: list[str] = []
    used = 0
    while True:
        sentence = _filler(rng)
        cost = len(tokenizer.encode(" " + sentence, add_special_tokens=False))
        if used + cost > budget:
            break
        sentences.append(sentence)
        used += cost
    sentences.insert(round(depth * len(sentences)), needle)
    record = {
        "id": f"niah-{length}-{depth:.2f}-{number}-{rng.getrandbits(20)}",
        "task": "niah",
        "split": "train",
        "turns": [
            {
                "role": "user",
                "segments": [
                    {"type": "text", "text": " ".join(sentences)},
                    {"type": "text", "text": " " + QUESTION},
                ],
            },
            {"role": "assistant", "segments": [{"type": "text", "text": number}]},
        ],
        "meta": {"length": length, "depth": depth, "needle": number},
    }
    Sample.from_dict(record)  # the record is a valid sample
    return record


def write_long_manifest(
    out: str | Path, n: int, tokenizer: Any, min_length: int, max_length: int, seed: int = 0
) -> Path:
    """``n`` haystack samples of uniformly drawn lengths and depths, as ``out/manifest.jsonl``."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    path = out / "manifest.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for _ in tqdm(range(n), desc="long samples"):
            length = rng.randint(min_length, max_length)
            record = haystack_sample(tokenizer, length, rng.random(), rng.choice(NUMBERS), rng)
            file.write(json.dumps(record) + "\n")
    return path


def write_short_manifest(
    source: str | Path, target: str | Path, processor: Any, length: int, whole: bool = True
) -> int:
    """Copy the samples of a manifest that fit a ``length``-token row to ``target``: the
    short samples of a context-extension experiment (task data of the short base model, the
    rehearsal share, the short-context validation set). ``whole`` marks every turn for loss
    (a turn's ``loss`` override), so a sample is language-modelled whole, prompt included;
    otherwise the records are copied as they are. Returns how many were kept."""
    from omni.sequence import Sample

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with Path(source).open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as file:
        for line in lines:
            record = json.loads(line)
            if len(processor.encode(Sample.from_dict(record), loss_on="assistant")) > length:
                continue
            if whole:
                for turn in record["turns"]:
                    turn["loss"] = True
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            kept += 1
    return kept


def evaluate_niah(
    model: Any,
    processor: Any,
    lengths: list[int],
    depths: list[float],
    trials: int,
    seed: int = 1234,
) -> dict[str, Any]:
    """Accuracy per (length, depth): the needle's number ranked first among all 90."""
    from tqdm import tqdm

    from omni.sequence import Sample

    rng = random.Random(seed)
    model.eval()
    candidates = [processor.tokenizer.encode(n, add_special_tokens=False) for n in NUMBERS]
    table: dict[str, dict[str, float]] = {}
    cells = [(length, depth) for length in lengths for depth in depths]
    for length, depth in tqdm(cells, desc="niah"):
        hits = 0
        for _ in range(trials):
            number = rng.choice(NUMBERS)
            record = haystack_sample(processor.tokenizer, length, depth, number, rng)
            prompt = Sample.from_dict({"turns": record["turns"][:1]})
            ids = processor.encode(prompt, add_generation_prompt=True).input_ids
            scores = candidate_scores(model, ids, candidates)
            hits += NUMBERS[max(range(len(scores)), key=scores.__getitem__)] == number
        table.setdefault(str(length), {})[f"{depth:.2f}"] = hits / trials
    return {"lengths": lengths, "depths": depths, "trials": trials, "accuracy": table}


def candidate_scores(model: Any, prompt: list[int], candidates: list[list[int]]) -> list[float]:
    """Log-likelihood of each candidate continuation of ``prompt``, one batched forward:
    candidates that share all but their last token share a row."""
    import torch

    rows = sorted({tuple(c[:-1]) for c in candidates}, key=lambda r: (len(r), r))
    width = len(prompt) + max(len(r) for r in rows)
    batch = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(batch)
    for i, row in enumerate(rows):
        tokens = prompt + list(row)
        batch[i, : len(tokens)] = torch.tensor(tokens)
        mask[i, : len(tokens)] = 1
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=batch.to(device), attention_mask=mask.to(device)).logits
    log_probs = logits.float().log_softmax(-1).cpu()
    scores = []
    for candidate in candidates:
        row = rows.index(tuple(candidate[:-1]))
        positions = range(len(prompt) - 1, len(prompt) - 1 + len(candidate))
        scores.append(sum(float(log_probs[row, p, t]) for p, t in zip(positions, candidate)))
    return scores


def plot_heatmap(result: dict[str, Any], path: str | Path, title: str = "NIAH accuracy") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths, depths = result["lengths"], result["depths"]
    grid = [[result["accuracy"][str(n)][f"{d:.2f}"] for n in lengths] for d in depths]
    figure, axes = plt.subplots(figsize=(1.2 * len(lengths) + 2, 0.6 * len(depths) + 1.5))
    image = axes.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    axes.set_xticks(range(len(lengths)), [str(n) for n in lengths])
    axes.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
    axes.set_xlabel("context length (tokens)")
    axes.set_ylabel("needle depth")
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            axes.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=axes)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(args: argparse.Namespace) -> int:
    from training.models import load_model

    out = Path(args.out)
    if args.write_long:
        from tokenizers_mm.text import micro_text_tokenizer

        tokenizer = micro_text_tokenizer()
        if args.model:
            tokenizer = load_model(args.model, {})[1]
        path = write_long_manifest(
            out, args.n, tokenizer, args.min_length, args.max_length, args.seed
        )
        print(f"wrote {args.n} long samples to {path}")
        return 0
    if not args.model:
        raise ValueError("omni eval niah needs --model CKPT (or --write-long)")
    from omni.processor import OmniProcessor

    model, tokenizer = load_model(args.model, {})
    processor = OmniProcessor.from_model(model, tokenizer)
    result = evaluate_niah(model, processor, args.lengths, args.depths, args.trials, args.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "niah.json").write_text(json.dumps(result, indent=2))
    plot_heatmap(result, out / "niah.png")
    for length in args.lengths:
        row = result["accuracy"][str(length)]
        print(f"length {length}: mean accuracy {sum(row.values()) / len(row):.3f}")
    print(f"wrote {out / 'niah.json'} and {out / 'niah.png'}")
    return 0
