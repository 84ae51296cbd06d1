"""Curation helpers for SFT mixtures: difficulty estimates and multi-trajectory reasoning.

- Difficulty: the mean assistant-token loss of a reference model on each sample. Splitting a
  manifest into difficulty buckets (``manifest.easy.jsonl`` ...) lets a recipe weight them,
  e.g. up-weight hard samples that a model has not yet learnt.
- Multi-trajectory reasoning: several ``think`` paths for one problem are several manifest
  lines sharing ``meta.problem`` (``meta.trajectory`` numbers them); each is an ordinary
  sample whose assistant turn carries ``think``. ``reasoning_manifest`` derives such problems
  from the toy world (counting by colour, with the objects enumerated in different orders).

``python -m training.curation reasoning TOYWORLD_MANIFEST OUT_DIR`` writes the reasoning set.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BUCKETS = ("easy", "medium", "hard")


# --- difficulty --------------------------------------------------------------------------
def estimate_difficulty(model: Any, processor: Any, manifest: str | Path) -> dict[str, float]:
    """Sample id -> mean loss of ``model`` on the sample's assistant tokens (higher = harder)."""
    import torch
    from tqdm import tqdm

    from training.data import Manifest

    source = Manifest(manifest)
    model.eval()
    losses: dict[str, float] = {}
    with torch.no_grad():
        for record in tqdm(source.records, desc="difficulty"):
            batch = processor([record.sample])
            losses[record.sample.id] = float(model(**batch.model_inputs()).lm_loss)
    return losses


def write_difficulty_buckets(
    manifest: str | Path, difficulty: dict[str, float], buckets: Sequence[str] = BUCKETS
) -> dict[str, Path]:
    """Split a manifest into equal-count difficulty buckets beside it (same media root);
    every line gains ``meta.difficulty``. Returns bucket name -> manifest path."""
    manifest = Path(manifest)
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    scored = [r for r in records if r.get("id") in difficulty]
    if not scored:
        raise ValueError(f"no sample of {manifest} has a difficulty estimate")
    scored.sort(key=lambda r: difficulty[r["id"]])
    paths = {}
    for index, name in enumerate(buckets):
        part = scored[
            index * len(scored) // len(buckets) : (index + 1) * len(scored) // len(buckets)
        ]
        path = manifest.with_name(f"{manifest.stem}.{name}.jsonl")
        with path.open("w", encoding="utf-8") as file:
            for record in part:
                record.setdefault("meta", {})["difficulty"] = difficulty[record["id"]]
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
        paths[name] = path
    return paths


def balanced_weights(
    difficulty: dict[str, float], buckets: Sequence[str] = BUCKETS
) -> dict[str, float]:
    """Mixture weights per bucket proportional to its mean difficulty (harder, more often)."""
    values = sorted(difficulty.values())
    means = {}
    for index, name in enumerate(buckets):
        part = values[
            index * len(values) // len(buckets) : (index + 1) * len(values) // len(buckets)
        ]
        means[name] = sum(part) / len(part) if part else 0.0
    total = sum(means.values()) or 1.0
    return {name: mean / total for name, mean in means.items()}


def balance_by_difficulty(
    recipe: Any, manifests: dict[str, str], model: Any, processor: Any
) -> dict[str, str]:
    """Carry out a recipe's ``balance_difficulty``: each named manifest is scored by ``model``
    (the one the stage starts from), split into difficulty buckets beside it, and its mixture
    entries are replaced by one per bucket, weighted ``entry.weight x balanced_weights``.
    Changes ``recipe.mixture`` in place; returns the manifests with the buckets added."""
    from dataclasses import replace

    manifests = dict(manifests)
    for name in recipe.balance_difficulty:
        if name not in manifests:
            raise ValueError(f"recipe {recipe.name} balances {name!r}, a manifest not given")
        difficulty = estimate_difficulty(model, processor, manifests[name])
        paths = write_difficulty_buckets(manifests[name], difficulty)
        weights = balanced_weights(difficulty)
        mixture = []
        for entry in recipe.mixture:
            if entry.manifest != name:
                mixture.append(entry)
                continue
            for bucket, path in paths.items():
                manifests[f"{name}.{bucket}"] = str(path)
                mixture.append(
                    replace(
                        entry, manifest=f"{name}.{bucket}", weight=entry.weight * weights[bucket]
                    )
                )
        recipe.mixture = mixture
    return manifests


# --- multi-trajectory reasoning ----------------------------------------------------------
def _phrase(obj: dict[str, str]) -> str:
    return f"a {obj['size']} {obj['colour']} {obj['shape']} on the {obj['position']}"


def reasoning_records(record: dict[str, Any], trajectories: int, rng: random.Random) -> list[dict]:
    """Counting-by-colour problems over one scene, each with ``trajectories`` think paths."""
    objects = record.get("meta", {}).get("attributes") or []
    image = next((s for t in record["turns"] for s in t["segments"] if s["type"] == "image"), None)
    if not objects or image is None:
        return []
    colour = rng.choice(sorted({o["colour"] for o in objects}))
    answer = str(sum(o["colour"] == colour for o in objects))
    problem = f"{record['id']}-count-{colour}"
    out = []
    orders = {tuple(rng.sample(range(len(objects)), len(objects))) for _ in range(4 * trajectories)}
    for number, order in enumerate(sorted(orders)[:trajectories]):
        steps = [f"I see {_phrase(objects[i])}." for i in order]
        running = 0
        for i in order:
            if objects[i]["colour"] == colour:
                running += 1
                steps.append(f"The {objects[i]['shape']} is {colour}: {running} so far.")
        think = " ".join(steps) + f" So there are {answer} {colour} objects."
        out.append(
            {
                "id": f"{problem}-t{number}",
                "task": "reasoning",
                "split": record.get("split", "train"),
                "turns": [
                    {
                        "role": "user",
                        "segments": [
                            image,
                            {"type": "text", "text": f"How many {colour} objects are there?"},
                        ],
                    },
                    {
                        "role": "assistant",
                        "think": think,
                        "segments": [{"type": "text", "text": answer}],
                    },
                ],
                "meta": {"problem": problem, "trajectory": number, "answer": answer},
            }
        )
    return out


def reasoning_manifest(
    toyworld_manifest: str | Path, out: str | Path, trajectories: int = 3, seed: int = 0
) -> Path:
    """Write reasoning problems from the toy world's English image samples to ``out``."""
    source = Path(toyworld_manifest)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    relative = os.path.relpath(source.parent, out)
    path = out / "manifest.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for line in source.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("task") not in ("caption", "vqa"):
                continue
            for turn in record["turns"]:
                for segment in turn["segments"]:
                    if "path" in segment and not os.path.isabs(segment["path"]):
                        segment["path"] = os.path.join(relative, segment["path"])
            for item in reasoning_records(record, trajectories, rng):
                file.write(json.dumps(item, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "reasoning":
        sys.exit("usage: python -m training.curation reasoning TOYWORLD_MANIFEST OUT_DIR")
    print(reasoning_manifest(sys.argv[2], sys.argv[3]))
