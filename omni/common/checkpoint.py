"""Resumable training state for every trainer here (decoders, tokenizers, encoders), as
safetensors + JSON (never pickle), and the optimizer-state flattening the LM stage
checkpoints (``training.checkpoints``) share.

A checkpoint folder holds ``state.safetensors`` (module weights and optimizer moments, under
``module/<name>/...`` and ``optim/<name>/<param index>/...``) and ``state.json`` (the step and
the optimizers' param-group hyper-parameters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def save_training_state(
    folder: str | Path,
    step: int,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write everything needed to resume at ``step``; the previous state is replaced whole.
    ``extra``: plain JSON saved beside the step (random-generator states), read back by
    ``training_extra``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, list] = {}
    stored: set[int] = set()
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            # safetensors refuses tensors that share memory (tied embeddings): a repeat is
            # saved as a copy, and loading writes both names into the one parameter
            value = value.detach().contiguous()
            shared = value.untyped_storage().data_ptr() in stored
            tensors[f"module/{name}/{key}"] = value.clone() if shared else value
            stored.add(value.untyped_storage().data_ptr())
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        tensors.update(optimizer_tensors(state, f"optim/{name}/"))
    save_file(tensors, str(folder / "state.safetensors.tmp"))
    (folder / "state.json.tmp").write_text(
        json.dumps({"step": step, "param_groups": groups, "extra": extra or {}})
    )
    (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
    (folder / "state.json.tmp").replace(folder / "state.json")


def optimizer_tensors(state: dict[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of an optimizer state dict (``optimizer.state_dict()``, or DCP's full one
    keyed by parameter names), as ``{prefix}{param}/{slot}``, on the CPU."""
    return {
        f"{prefix}{param}/{slot}": torch.as_tensor(value).detach().cpu().contiguous()
        for param, slots in state["state"].items()
        for slot, value in slots.items()
    }


def optimizer_state(
    tensors: dict[str, torch.Tensor],
    prefix: str,
    param_groups: list[dict[str, Any]],
    param_key: Callable[[str], Any] = str,
) -> dict[str, Any]:
    """The optimizer state dict ``optimizer_tensors`` flattened (``param_key``: ``int`` for a
    plain optimizer's indices, ``str`` for parameter names)."""
    state: dict[Any, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            param, slot = key[len(prefix) :].rsplit("/", 1)
            state.setdefault(param_key(param), {})[slot] = value
    return {"state": state, "param_groups": param_groups}


def load_training_state(
    folder: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> int:
    """Restore modules and optimizers in place from ``folder``; return the saved step
    (0 when the folder holds no checkpoint)."""
    folder = Path(folder)
    if not (folder / "state.json").is_file():
        return 0
    meta = json.loads((folder / "state.json").read_text())
    tensors = load_file(str(folder / "state.safetensors"))
    for name, module in modules.items():
        prefix = f"module/{name}/"
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
    for name, optimizer in optimizers.items():
        state = optimizer_state(tensors, f"optim/{name}/", meta["param_groups"][name], int)
        optimizer.load_state_dict(state)
    return int(meta["step"])


def training_extra(folder: str | Path) -> dict[str, Any]:
    """The ``extra`` JSON saved with the checkpoint in ``folder`` ({} when there is none)."""
    path = Path(folder) / "state.json"
    return json.loads(path.read_text()).get("extra", {}) if path.is_file() else {}
