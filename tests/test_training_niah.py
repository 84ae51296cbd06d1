"""Needle in a haystack and curation helpers at micro scale."""

from __future__ import annotations

import json
import random

import pytest
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


def test_haystack_samples_fit_the_row_length_they_are_written_for(text_tokenizer, tmp_path):
    """A sample written for ``length`` encodes (chat template, answer, end) to at most
    ``length`` tokens, so the packer never drops a long-context sample as too long."""
    from omni.processor import OmniProcessor
    from omni.sequence import Sample
    from training.niah import write_long_manifest

    model, _ = build_micro("micro-llama", encoders={})
    processor = OmniProcessor.from_model(model, text_tokenizer)
    path = write_long_manifest(tmp_path, 40, text_tokenizer, 48, 160, seed=3)
    with pytest.raises(ValueError, match="at least"):
        haystack_sample(text_tokenizer, 30, 0.5, "42", random.Random(0))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    fill = []
    for record in records:
        encoded = processor.encode(Sample.from_dict(record), loss_on="assistant")
        assert len(encoded) <= record["meta"]["length"], (len(encoded), record["meta"])
        fill.append(len(encoded) / record["meta"]["length"])
        answer = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != -100]
        assert text_tokenizer.decode(answer[:2]) == record["meta"]["needle"]
    assert sum(fill) / len(fill) > 0.75  # whole filler sentences fill most of the budget
    assert {r["meta"]["needle"] for r in records} <= set(NUMBERS)
    assert min(r["meta"]["length"] for r in records) >= 48
    assert max(r["meta"]["length"] for r in records) <= 160


def test_short_manifest_keeps_fitting_samples_and_models_them_whole(text_tokenizer, tmp_path):
    """The short samples of the context-extension experiment: only those that fit the row,
    and with ``whole`` every token but the role markers has a label (the prompt is modelled
    too, so the short-context validation loss is not only the near-solved answer span)."""
    from omni.processor import OmniProcessor
    from omni.sequence import Sample
    from training.niah import write_short_manifest
    from training.toyworld import generate

    model, _ = build_micro("micro-llama", encoders={})
    processor = OmniProcessor.from_model(model, text_tokenizer)
    world = generate(tmp_path / "world", 60, seed=4, tasks=["translate"], progress=False)
    whole = write_short_manifest(world, tmp_path / "lm" / "manifest.jsonl", processor, 64)
    answer = write_short_manifest(
        world, tmp_path / "answer" / "manifest.jsonl", processor, 64, whole=False
    )
    total = len(world.read_text().splitlines())
    assert 0 < whole == answer < total  # most translations are longer than 64 tokens
    lm = Manifest(tmp_path / "lm" / "manifest.jsonl", split=None, on_error="raise").records
    plain = Manifest(tmp_path / "answer" / "manifest.jsonl", split=None).records
    for a, b in zip(lm, plain):
        assert a.sample.id == b.sample.id
        full = processor.encode(a.sample, loss_on="assistant")
        only = processor.encode(b.sample, loss_on="assistant")
        assert len(full) == len(only) <= 64
        assert full.input_ids == only.input_ids
        roles = {processor.layout.role_id(t.role) for t in a.sample.turns}
        unlabelled = [t for t, label in zip(full.input_ids, full.labels) if label == -100]
        assert set(unlabelled) <= roles and len(unlabelled) == len(a.sample.turns)
        answer_span = [t for t, label in zip(only.input_ids, only.labels) if label != -100]
        reply = a.sample.turns[-1]
        assert reply.role == "assistant"
        assert answer_span == processor.encode(Sample([reply]), "assistant").input_ids[1:]


def test_recipe_yarn_leaves_frequencies_that_turn_within_the_original_length_alone():
    """The context-extension recipe's YaRN shape: every rotary frequency that completes a
    turn within the original length is left as it was, those that never get near one are
    interpolated by the full factor, and the attention temperature is unchanged."""
    import math

    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from training.curriculum import Curriculum, apply_rope_scaling

    rope = Curriculum.load("configs/context-extension.yaml").stages[0].rope
    assert rope["rope_type"] == "yarn" and rope["factor"] == 4.0
    model, _ = build_micro("micro-llama", encoders={})
    apply_rope_scaling(model, rope)  # what `omni train lm` does with the recipe
    config = model.config.backbone_config
    original = rope["original_max_position_embeddings"]
    assert config.max_position_embeddings == int(original * rope["factor"])
    scaled, attention = ROPE_INIT_FUNCTIONS["yarn"](config, "cpu")
    rotary = next(m.rotary_emb for m in model.modules() if hasattr(m, "rotary_emb"))
    assert torch.allclose(rotary.inv_freq, scaled)  # the rebuilt rotary embedding uses them
    dim = config.head_dim
    plain = 1.0 / config.rope_parameters["rope_theta"] ** (torch.arange(0, dim, 2) / dim)
    turns = original * plain / (2 * math.pi)  # rotations within the original length
    assert attention == 1.0
    assert torch.allclose(scaled[turns >= 1], plain[turns >= 1])
    assert torch.allclose(scaled[turns < 0.1], plain[turns < 0.1] / 4)
    assert bool((turns >= 1).any()) and bool((turns < 0.1).any())
