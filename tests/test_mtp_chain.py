"""Chained MTP training (omni.mtp_chain): each depth's training state is exactly the state the
drafting chain computes, packed samples stay apart, "model" targets are the main model's
greedy choices, and an MTP-only stage leaves every other weight (so every answer) unchanged."""

from __future__ import annotations

import pytest
import torch
import yaml

from omni.drafting import DraftState
from omni.mtp_chain import chain_loss, chain_states
from omni.presets import build_micro_pipeline
from omni.processor import IGNORE_INDEX, OmniProcessor
from training.curriculum import Curriculum, Recipe
from training.data import DataSpec, RowPacker
from training.manifests import Manifest
from training.models import load_model
from training.trainer import TrainOptions, train_stage

DEPTH = 3


@pytest.fixture(scope="module", params=["micro-llama", "micro-hcx-omni", "micro-k-exaone"])
def model(request):
    return build_micro_pipeline(request.param, seed=0).model.eval()


def states_of(model, ids: torch.Tensor, positions: torch.Tensor | None = None):
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=positions, return_hidden=True, use_cache=False)
        embeds = model.get_input_embeddings()(ids)
        return out.last_hidden_state, chain_states(
            model.mtp, out.last_hidden_state, embeds, DEPTH, positions
        )


@torch.no_grad()
def drafted_logits(model, ids: torch.Tensor, hidden: torch.Tensor, root: int) -> list:
    """The logits the drafting chain rooted at ``root`` sees at each depth, its drafts being the
    sequence's own tokens (the MTP cache holds the depth-1 entries up to the root)."""
    seen = []

    def pick(row, logits, drafted):
        seen.append(logits.clone())
        return int(ids[0, root + len(drafted) + 2])

    state = DraftState(
        model,
        hidden[:, : root + 1],
        ids[:, 1 : root + 2],
        torch.arange(root + 1).unsqueeze(0),
        torch.ones(1, root + 1, dtype=torch.long),
    )
    state.chain(DEPTH, torch.tensor([root + 1]), pick)
    return seen


def test_each_depth_trains_on_the_state_the_drafting_chain_computes(model):
    torch.manual_seed(0)
    ids = torch.randint(10, 200, (1, 12))
    hidden, states = states_of(model, ids)
    head = model.get_output_embeddings()
    for root in range(ids.shape[1] - DEPTH - 1):
        seen = drafted_logits(model, ids, hidden, root)
        for depth in range(DEPTH):
            trained = head(states[depth][:, root])[0]
            assert torch.allclose(trained, seen[depth], atol=1e-4), (root, depth)


def test_packed_samples_chain_as_they_would_alone():
    model = build_micro_pipeline("micro-llama", seed=0).model.eval()
    torch.manual_seed(1)
    first, second = torch.randint(10, 200, (1, 9)), torch.randint(10, 200, (1, 8))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(9), torch.arange(8)]).unsqueeze(0)
    _, together = states_of(model, packed, positions)
    _, alone = states_of(model, second)
    for depth in range(DEPTH):
        # Roots of the second sample whose chains stay inside it.
        inside = 8 - depth - 2
        assert torch.allclose(
            together[depth][:, 9 : 9 + inside], alone[depth][:, :inside], atol=1e-5
        )


def test_model_targets_are_the_main_models_greedy_choice_where_labels_train():
    vocab, length = 7, 6
    labels = torch.tensor([[IGNORE_INDEX, 1, 2, 3, 4, 5]])
    main = torch.full((1, length, vocab), -10.0)
    main[0, torch.arange(length), 6] = 10.0  # the main model always chooses token 6
    sure_of_six = torch.full((1, length - 1, vocab), -10.0)
    sure_of_six[..., 6] = 10.0
    by_depth = [sure_of_six] * 2
    assert float(chain_loss(by_depth, labels, main, "model")) < 1e-6
    assert float(chain_loss(by_depth, labels, main, "labels")) > 10
    labels[0, 3:] = IGNORE_INDEX  # depth 1 keeps one target (t=0 -> 2); depth 2 has none
    assert float(chain_loss(by_depth, labels, main, "labels")) > 10


def test_bad_chain_settings_are_clear_errors():
    base = {"name": "s", "mixture": [{"manifest": "m"}], "trainable": ["mtp"]}
    with pytest.raises(ValueError, match="recipe s: mtp_depth must be an integer in 1..4"):
        Recipe.from_dict({**base, "mtp_depth": 5})
    with pytest.raises(ValueError, match="mtp_targets must be one of"):
        Recipe.from_dict({**base, "mtp_targets": "teacher"})
    assert Recipe.from_dict(base).mtp_training() == {}
    assert Recipe.from_dict({**base, "mtp_depth": 2}).mtp_training() == {
        "mtp_depth": 2,
        "mtp_targets": "labels",
    }


def test_an_mtp_only_chain_stage_lowers_the_chain_loss_and_changes_nothing_else(tmp_path):
    from training.toyworld import generate

    world = generate(tmp_path / "world", 40, seed=7, tasks=["translate"], progress=False)
    stage = {
        "name": "mtp-chain",
        "mixture": [{"manifest": "toyworld", "split": "train"}],
        "trainable": ["mtp"],
        "mtp_depth": DEPTH,
        "mtp_targets": "model",
        "mtp_scale": [[0.0, 1.0]],
        "sequence_length": 128,
        "rows_per_step": 4,
        "micro_rows": 2,
        "steps": 80,
        "warmup_steps": 2,
        "lr": 1e-2,
        "checkpoint_every": 100,
    }
    (tmp_path / "stage.yaml").write_text(yaml.safe_dump(stage))
    curriculum = {
        "model": {"preset": "micro-llama", "encoders": {}},
        "manifests": {"toyworld": str(world)},
        "stages": ["stage.yaml"],
    }
    (tmp_path / "curriculum.yaml").write_text(yaml.safe_dump(curriculum))
    loaded = Curriculum.load(tmp_path / "curriculum.yaml")
    model, tokenizer = load_model(None, loaded.model, {})
    processor = OmniProcessor.from_model(model, tokenizer)
    spec = DataSpec([Manifest(world, "train")], [1.0], 128, loss_on="assistant", lookahead=16)
    batch = RowPacker(spec, processor).next_batch(4)

    @torch.no_grad()
    def chain_loss_now() -> float:
        model.eval()
        return float(model(**batch.model_inputs(), mtp_depth=DEPTH, mtp_targets="model").mtp_loss)

    before, loss_before = {k: v.clone() for k, v in model.state_dict().items()}, chain_loss_now()
    train_stage(
        model,
        processor,
        loaded.stages[0],
        loaded.manifests,
        tmp_path / "run",
        TrainOptions(progress=False),
    )
    after = model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"mtp"}
    assert chain_loss_now() < 0.8 * loss_before


@torch.no_grad()
def test_the_direct_drafting_step_drafts_what_the_blocks_forward_drafts(model):
    torch.manual_seed(2)
    ids = torch.randint(10, 200, (1, 12))
    hidden, _ = states_of(model, ids)
    model.mtp._direct = False
    by_forward = drafted_logits(model, ids, hidden, 6)
    model.mtp._direct = None  # probed again on the next step
    by_layer = drafted_logits(model, ids, hidden, 6)
    assert model.mtp._direct is True
    for forward, layer in zip(by_forward, by_layer):
        assert torch.allclose(forward, layer, atol=1e-5)


def test_a_block_whose_forward_does_more_stays_on_its_forward():
    model = build_micro_pipeline("micro-llama", seed=0).model.eval()
    # The direct step scales its input by this, which LlamaModel's forward never reads.
    model.mtp.block.embedding_multiplier = 2.0
    assert model.mtp._direct_path_matches(torch.zeros(1, 1, model.config.hidden_size)) is False
    torch.manual_seed(3)
    ids = torch.randint(10, 200, (1, 12))
    hidden, _ = states_of(model, ids)
    drafted_logits(model, ids, hidden, 6)
    assert model.mtp._direct is False


def test_the_chain_loss_trains_under_bf16_autocast():
    model = build_micro_pipeline("micro-llama", seed=0).model.train()
    ids = torch.randint(10, 200, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=ids, labels=ids, mtp_depth=DEPTH, mtp_targets="model")
    out.mtp_loss.backward()
    assert torch.isfinite(out.mtp_loss)
    assert model.mtp.proj.weight.grad is not None
