"""Needle in a haystack and curation helpers at micro scale."""

from __future__ import annotations

import json
import random

import torch

from omni.presets import build_micro
from training.curation import balanced_weights, reasoning_manifest, write_difficulty_buckets
from training.data import Manifest
from training.niah import NUMBERS, candidate_scores, haystack_sample


def test_haystack_hides_the_needle_at_the_asked_depth(text_tokenizer):
    for depth in (0.0, 0.5, 1.0):
        record = haystack_sample(text_tokenizer, 400, depth, "42", random.Random(0))
        haystack = record["turns"][0]["segments"][0]["text"]
        where = haystack.index("The secret number is 42.") / len(haystack)
        assert abs(where - depth) < 0.12, (depth, where)
        tokens = len(text_tokenizer.encode(haystack, add_special_tokens=False))
        assert 320 < tokens <= 400
    assert record["turns"][1]["segments"][0]["text"] == "42"


def test_candidate_scores_equal_full_sequence_log_likelihoods():
    model, _ = build_micro("micro-llama", encoders={})
    model.eval()
    prompt = torch.randint(0, 500, (30,)).tolist()
    candidates = [[7, 8], [7, 9], [5, 1]]
    scores = candidate_scores(model, prompt, candidates)
    for candidate, score in zip(candidates, scores):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + candidate])).logits[0]
        log_probs = logits.log_softmax(-1)
        expected = sum(float(log_probs[len(prompt) - 1 + i, t]) for i, t in enumerate(candidate))
        assert abs(score - expected) < 1e-4


def test_omni_eval_niah_writes_heatmap_and_table(tmp_path):
    from omni.cli import main

    model, processor = build_micro("micro-llama", encoders={})
    model.save_pretrained(tmp_path / "model")
    processor.tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "niah"
    argv = ["eval", "niah", "--model", str(tmp_path / "model"), "--out", str(out)]
    assert main([*argv, "--lengths", "64", "128", "--depths", "0", "1", "--trials", "2"]) == 0
    table = json.loads((out / "niah.json").read_text())
    assert set(table["accuracy"]) == {"64", "128"}
    assert set(table["accuracy"]["128"]) == {"0.00", "1.00"}
    assert all(v in (0.0, 0.5, 1.0) for row in table["accuracy"].values() for v in row.values())
    assert (out / "niah.png").read_bytes()[:4] == b"\x89PNG"
    assert len(NUMBERS) == 90


def test_reasoning_problems_have_several_trajectories_and_balance_by_difficulty(tmp_path):
    from training.toyworld import generate

    world = generate(tmp_path / "world", 12, seed=2, tasks=["caption", "vqa"], progress=False)
    path = reasoning_manifest(world, tmp_path / "reasoning", trajectories=3)
    source = Manifest(path, split=None, on_error="raise")
    problems = {}
    for record in source.records:
        sample = record.sample
        problems.setdefault(sample.meta["problem"], []).append(sample.turns[-1].think)
        assert sample.turns[-1].segments[0].text == sample.meta["answer"]
    assert len(problems) == 12
    assert any(len(set(thinks)) > 1 for thinks in problems.values())

    difficulty = {r.sample.id: float(i) for i, r in enumerate(source.records)}
    buckets = write_difficulty_buckets(path, difficulty)
    easy, hard = Manifest(buckets["easy"], split=None), Manifest(buckets["hard"], split=None)
    assert max(difficulty[r.sample.id] for r in easy.records) < min(
        difficulty[r.sample.id] for r in hard.records
    )
    weights = balanced_weights(difficulty)
    assert weights["hard"] > weights["medium"] > weights["easy"]
    assert abs(sum(weights.values()) - 1) < 1e-9
