"""Resumable training state for every trainer here (decoders, tokenizers, encoders), as
safetensors + JSON (never pickle).

A checkpoint folder holds ``state.safetensors`` (module weights and optimizer moments, under
``module/<name>/...`` and ``optim/<name>/<param index>/...``) and ``state.json`` (the step and
the optimizers' param-group hyper-parameters).
"""

from __future__ import annotations

import json
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
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value.detach().contiguous()
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"optim/{name}/{index}/{slot}"] = torch.as_tensor(value).contiguous()
    save_file(tensors, str(folder / "state.safetensors.tmp"))
    (folder / "state.json.tmp").write_text(
        json.dumps({"step": step, "param_groups": groups, "extra": extra or {}})
    )
    (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
    (folder / "state.json.tmp").replace(folder / "state.json")


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
        prefix = f"optim/{name}/"
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, slot = key[len(prefix) :].split("/")
                state.setdefault(int(index), {})[slot] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    return int(meta["step"])


def training_extra(folder: str | Path) -> dict[str, Any]:
    """The ``extra`` JSON saved with the checkpoint in ``folder`` ({} when there is none)."""
    path = Path(folder) / "state.json"
    return json.loads(path.read_text()).get("extra", {}) if path.is_file() else {}
