"""Checkpoints of a curriculum stage: folders written to a temporary name and renamed into
place (never half written; what a kill leaves half-written is removed on the next start):
``model.safetensors``, ``optimizer.safetensors`` (``omni.common.checkpoint`` layout) +
``optimizer.json`` (param groups), ``rng.safetensors`` and
``trainer.json`` (step, data-sampler state). Nothing is pickled. Under FSDP2 the model and
optimiser states are gathered to full tensors on rank 0's CPU before writing and scattered
back to the shards on load, so a checkpoint is the same files whatever the number of
processes that wrote it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from omni.common.checkpoint import optimizer_state as saved_optimizer_state
from omni.common.checkpoint import optimizer_tensors

log = logging.getLogger(__name__)


def full_state_options() -> Any:
    """DCP state-dict options: full (unsharded) tensors, offloaded to the CPU."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _saved_groups(state: dict[str, Any]) -> list[dict[str, Any]]:
    # The scheduler's ``initial_lr`` is not saved: a fresh optimizer (what DCP loads into)
    # has none, and the schedule rebuilds it from the recipe's peak on resume.
    return [{k: v for k, v in g.items() if k != "initial_lr"} for g in state["param_groups"]]


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    env: Any,  # training.trainer.Distributed: only its main process writes
    keep: int = 2,
) -> Path | None:
    """Write ``folder/step-N`` atomically (temp folder, then rename) and point ``latest`` at it."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer, options=full_state_options())
    if not env.main:
        return None
    final = folder / f"step-{trainer_state['step']:07d}"
    temporary = folder / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model_state.items()}, temporary / "model.safetensors")
    save_file(optimizer_tensors(optimizer_state), temporary / "optimizer.safetensors")
    (temporary / "optimizer.json").write_text(json.dumps(_saved_groups(optimizer_state)))
    save_file({"torch": torch.get_rng_state()}, temporary / "rng.safetensors")
    (temporary / "trainer.json").write_text(json.dumps(trainer_state, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    pointer = folder / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, folder / "latest")
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old)
    return final


def remove_partial_checkpoints(folder: Path) -> list[Path]:
    """Delete the temporary folders a killed ``save_checkpoint`` left half-written; returns
    them. Only the process that writes checkpoints calls this, before it writes any."""
    partial = sorted(folder.glob(".tmp-step-*"))
    for path in partial:
        log.warning("removing the half-written checkpoint %s", path)
        shutil.rmtree(path)
    return partial


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / "latest"
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text().strip()
    return path if path.is_dir() else None


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, optimiser and RNG state; returns the trainer state (step, data)."""
    from torch.distributed.checkpoint.state_dict import set_state_dict

    groups = json.loads((path / "optimizer.json").read_text())
    optimizer_state = saved_optimizer_state(load_file(path / "optimizer.safetensors"), "", groups)
    set_state_dict(
        model,
        optimizer,
        model_state_dict=load_file(path / "model.safetensors"),
        optim_state_dict=optimizer_state,
        options=full_state_options(),
    )
    torch.set_rng_state(load_file(path / "rng.safetensors")["torch"])
    return json.loads((path / "trainer.json").read_text())
