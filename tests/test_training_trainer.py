"""The trainer: atomic checkpoints, exact resume after kill -9, torchrun matches one process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from training.checkpoints import latest_checkpoint, load_checkpoint
from training.curriculum import Curriculum
from training.metrics import read_metrics
from training.trainer import TrainOptions, train_stage

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable  # the interpreter running the tests, whatever venv it lives in


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from training.toyworld import generate

    return generate(
        tmp_path_factory.mktemp("world"), 40, seed=7, tasks=["translate"], progress=False
    )


def write_curriculum(folder: Path, world: Path, preset: str, **stage) -> Path:
    """A one-stage, text-only curriculum over the toy world's translation samples."""
    recipe = {
        "name": "sft-1-conversation",
        "mixture": [{"manifest": "toyworld", "split": "train"}],
        "trainable": ["embeddings", "backbone", "mtp"],
        "sequence_length": 128,
        "rows_per_step": 4,
        "micro_rows": 1,
        "warmup_steps": 2,
        "lr": 3e-3,
        **stage,
    }
    (folder / "stage.yaml").write_text(yaml.safe_dump(recipe))
    curriculum = {
        "model": {"preset": preset, "encoders": {}},
        "manifests": {"toyworld": str(world)},
        "stages": ["stage.yaml"],
    }
    path = folder / "curriculum.yaml"
    path.write_text(yaml.safe_dump(curriculum))
    return path


def train_command(recipe: Path, out: Path, *extra: str) -> list[str]:
    return [
        "-m",
        "omni.cli",
        "train",
        "lm",
        "--recipe",
        str(recipe),
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]


def run_python(args: list[str], timeout: int = 300) -> None:
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_checkpoint_restores_model_optimizer_and_data_state(world, tmp_path):
    from omni.processor import OmniProcessor
    from training.models import load_model

    recipe_path = write_curriculum(tmp_path, world, "micro-llama", steps=3, checkpoint_every=2)
    curriculum = Curriculum.load(recipe_path)
    recipe = curriculum.stages[0]

    def fresh():
        model, tokenizer = load_model(None, curriculum.model)
        return model, OmniProcessor.from_model(model, tokenizer)

    model, processor = fresh()
    options = TrainOptions(progress=False, tensorboard=False)
    train_stage(model, processor, recipe, curriculum.manifests, tmp_path / "run", options)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "latest",
        "step-0000002",
        "step-0000003",
    ]
    last = latest_checkpoint(checkpoints)
    assert last.name == "step-0000003"
    assert sorted(p.name for p in last.iterdir()) == [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "rng.safetensors",
        "trainer.json",
    ]
    restored, _ = fresh()
    optimizer = torch.optim.AdamW([p for p in restored.parameters() if p.requires_grad])
    state = load_checkpoint(last, restored, optimizer)
    assert state["step"] == 3 and state["recipe"] == "sft-1-conversation"
    assert state["data"]["sampler"]["position"] > 0
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(optimizer.state) == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.slow
def test_resume_after_kill_9_repeats_the_loss_sequence_bitwise(world, tmp_path):
    recipe = write_curriculum(
        tmp_path, world, "micro-llama", steps=12, checkpoint_every=2, rows_per_step=2
    )
    run_python(train_command(recipe, tmp_path / "reference"))
    reference = read_metrics(tmp_path / "reference" / "sft-1-conversation")

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [PYTHON, *train_command(recipe, out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pointer = out / "sft-1-conversation" / "checkpoints" / "latest"
    deadline = time.monotonic() + 240
    while not pointer.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    still_running = process.poll() is None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert still_running, "the run finished before it could be killed"
    last = latest_checkpoint(pointer.parent)
    assert len(list(last.iterdir())) == 5  # the checkpoint named by `latest` is whole
    assert int(last.name.split("-")[1]) < 12

    run_python(train_command(recipe, out, "--resume"))
    resumed = read_metrics(out / "sft-1-conversation")
    assert [r["step"] for r in resumed] == [float(s) for s in range(1, 13)]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in reference]


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(world, tmp_path):
    recipe = write_curriculum(tmp_path, world, "micro-k-exaone", steps=3, checkpoint_every=3)
    run_python(train_command(recipe, tmp_path / "single"))
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env_args = train_command(recipe, tmp_path / "ddp")
    run_python([*torchrun, *env_args])
    single = read_metrics(tmp_path / "single" / "sft-1-conversation")
    ddp = read_metrics(tmp_path / "ddp" / "sft-1-conversation")
    assert len(single) == len(ddp) == 3
    for a, b in zip(single, ddp):
        assert abs(a["loss"] - b["loss"]) <= 1e-4 * abs(a["loss"]), (a["loss"], b["loss"])
        assert a["tokens"] == b["tokens"]
        assert a["moe_imbalance"] >= 1.0 and abs(a["moe_imbalance"] - b["moe_imbalance"]) < 1e-3


@pytest.mark.slow
def test_fsdp2_two_processes_match_one_process_and_resume(world, tmp_path):
    """FSDP2 (fully_shard, gloo on CPU): same losses as one process for the same global batch;
    checkpoints hold the full state dict gathered to rank 0, and ``--resume`` under FSDP2
    scatters it back and repeats the uninterrupted run."""
    from omni.modeling import OmniForConditionalGeneration
    from omni.processor import OmniProcessor
    from training.models import load_model

    recipe_path = write_curriculum(
        tmp_path, world, "micro-k-exaone", steps=4, checkpoint_every=2, warmup_steps=1
    )
    curriculum = Curriculum.load(recipe_path)
    model, tokenizer = load_model(None, curriculum.model)
    torch.manual_seed(curriculum.stages[0].seed)  # as `omni train lm` does
    single_out = tmp_path / "single"
    options = TrainOptions(progress=False, tensorboard=False)
    processor = OmniProcessor.from_model(model, tokenizer)
    single = train_stage(
        model, processor, curriculum.stages[0], curriculum.manifests, single_out, options
    )

    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run_python([*torchrun, *train_command(recipe_path, tmp_path / "fsdp", "--fsdp")])
    stage = tmp_path / "fsdp" / "sft-1-conversation"
    fsdp = read_metrics(stage)
    assert [r["step"] for r in fsdp] == [1.0, 2.0, 3.0, 4.0]
    assert single[-1]["loss"] < single[0]["loss"]  # the steps did train
    for a, b in zip(single, fsdp):
        assert abs(a["loss"] - b["loss"]) <= 1e-4 * abs(a["loss"]), (a["loss"], b["loss"])
        assert a["tokens"] == b["tokens"]

    # The final model and the checkpoint hold full (unsharded) tensors, equal to one process's.
    gathered = OmniForConditionalGeneration.from_pretrained(stage / "final").state_dict()
    for name, value in model.state_dict().items():
        assert gathered[name].shape == value.shape, name
        assert torch.allclose(gathered[name], value, atol=1e-5), name
    checkpoints = stage / "checkpoints"
    restored, _ = load_model(None, curriculum.model)
    optimizer = torch.optim.AdamW([p for p in restored.parameters() if p.requires_grad])
    assert load_checkpoint(latest_checkpoint(checkpoints), restored, optimizer)["step"] == 4
    for name, value in model.state_dict().items():
        assert torch.allclose(restored.state_dict()[name], value, atol=1e-5), name
    assert len(optimizer.state) == sum(1 for p in model.parameters() if p.requires_grad)

    # Roll back to the step-2 checkpoint and resume under FSDP2: steps 3-4 repeat.
    shutil.rmtree(stage / "final")
    shutil.rmtree(checkpoints / "step-0000004")
    (checkpoints / "latest").write_text("step-0000002")
    run_python([*torchrun, *train_command(recipe_path, tmp_path / "fsdp", "--fsdp", "--resume")])
    resumed = read_metrics(stage)
    assert [r["step"] for r in resumed] == [1.0, 2.0, 3.0, 4.0]
    for a, b in zip(fsdp, resumed):
        assert abs(a["loss"] - b["loss"]) <= 1e-6 * abs(a["loss"]), (a["loss"], b["loss"])


def test_fsdp_outside_torchrun_is_a_clear_error(world, tmp_path):
    from omni.processor import OmniProcessor
    from training.models import load_model

    curriculum = Curriculum.load(write_curriculum(tmp_path, world, "micro-llama", steps=1))
    model, tokenizer = load_model(None, curriculum.model)
    processor = OmniProcessor.from_model(model, tokenizer)
    options = TrainOptions(fsdp=True, progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="torchrun"):
        train_stage(model, processor, curriculum.stages[0], curriculum.manifests, tmp_path, options)
