"""The shared training loop (``omni.common.loop``): resume at the saved step with the same
weights, optimizer moments, random generators and learning rate; checkpoints on a cadence."""

from __future__ import annotations

import json
import random

import pytest
import torch

from omni.common.checkpoint import load_training_state, save_training_state
from omni.common.loop import TrainLoop
from omni.common.schedule import learning_rates, warmup_cosine


def _run(folder, steps, stop_after=None, every=2):
    """Train a tiny regression; returns (lr, data draw, loss) of each step run."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    rng, generator = random.Random(1), torch.Generator().manual_seed(2)
    loop = TrainLoop(
        folder,
        steps,
        {"model": model},
        {"model": optimizer},
        schedule=warmup_cosine(2, steps, 0.1),
        rngs={"data": rng, "noise": generator},
        checkpoint_every=every,
        progress=False,
    )
    seen = []
    for step in loop:
        x = torch.randn(4, 3, generator=generator) + rng.random()
        loss = (model(x) - 1).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen.append((loop.lr(), loss.item()))
        if step + 1 == stop_after:
            break  # killed after this step's work, before any later checkpoint
    return seen


def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(tmp_path):
    whole = _run(tmp_path / "a", 8)
    first = _run(tmp_path / "b", 8, stop_after=5)  # last checkpoint: step 4
    rest = _run(tmp_path / "b", 8)
    assert first[:4] + rest == whole
    assert [lr for lr, _ in whole] == pytest.approx(
        learning_rates(warmup_cosine(2, 8, 0.1), 8, 0.1)
    )


def test_checkpoints_follow_the_cadence_and_the_end(tmp_path):
    _run(tmp_path, 5, stop_after=3, every=2)
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 2
    _run(tmp_path, 5, every=2)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["step"] == 5 and set(state["extra"]["rngs"]) == {"data", "noise"}
    assert _run(tmp_path, 5) == []  # finished: nothing left to run


def test_more_steps_continue_on_the_curve_of_the_new_total(tmp_path):
    _run(tmp_path, 4)
    longer = _run(tmp_path, 10)
    assert [lr for lr, _ in longer] == pytest.approx(
        learning_rates(warmup_cosine(2, 10, 0.1), 10, 0.1)[4:]
    )


def test_steps_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="steps must be positive"):
        _run(tmp_path, 0)


def _noted_run(folder, steps, stop_after=None):
    """Each step notes its number; returns the notes the loop ends with."""
    loop = TrainLoop(folder, steps, {}, {}, checkpoint_every=2, notes={"seen": []}, progress=False)
    for step in loop:
        loop.notes["seen"].append(step)
        if step + 1 == stop_after:
            break
    return loop.notes


def test_notes_kept_with_a_checkpoint_come_back_on_resume(tmp_path):
    assert _noted_run(tmp_path, 6, stop_after=3) == {"seen": [0, 1, 2]}  # checkpoint: step 2
    assert _noted_run(tmp_path, 6) == {"seen": [0, 1, 2, 3, 4, 5]}


def test_tied_weights_round_trip_through_a_checkpoint(tmp_path):
    """safetensors refuses tensors that share memory; a tied model still checkpoints."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    model[1].weight = model[0].weight
    save_training_state(tmp_path, 3, {"model": model}, {})
    restored = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    restored[1].weight = restored[0].weight
    assert load_training_state(tmp_path, {"model": restored}, {}) == 3
    assert torch.equal(restored[0].weight, model[0].weight)
    assert restored[1].weight is restored[0].weight
