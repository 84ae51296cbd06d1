"""Spreading the LM of a pipeline over several devices, with accelerate.

``omni.load(path, device_map="auto")`` covers a model larger than one GPU: accelerate's
``infer_auto_device_map`` fills the devices in order (GPUs, then the CPU) up to ``max_memory``,
never splitting a backbone layer (the backbone's ``_no_split_modules``), and ``dispatch_model``
hooks each placed module so its inputs move to its device. Only the LM (``pipe.model``) is
spread; the decoders are small and stay on the device of the input embeddings, where
generation makes its tensors (``omni.decoding``).
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate import dispatch_model, infer_auto_device_map

DeviceMap = str | dict[str, Any]


def check_device_map(device_map: DeviceMap | None, device: Any) -> tuple | str | None:
    """``device_map`` as a hashable value (for the load cache), checked before any reading:
    ``"auto"`` or a dict of module names to devices, never together with ``device``."""
    if device_map is None:
        return None
    if device is not None:
        raise ValueError(
            f"pass device={device!r} or device_map={device_map!r}, not both: a device map "
            f"already says where every module goes"
        )
    if isinstance(device_map, str):
        if device_map != "auto":
            raise ValueError(
                f"unknown device_map {device_map!r}; expected 'auto' or a dict of module "
                f"names to devices, e.g. {{'backbone.model.layers.0': 'cuda:0', ...}}"
            )
        return device_map
    if not isinstance(device_map, dict) or not device_map:
        raise ValueError(
            f"device_map must be 'auto' or a non-empty dict of module names to devices, "
            f"got {device_map!r}"
        )
    return tuple(sorted(device_map.items(), key=str))


def no_split_modules(model: torch.nn.Module) -> list[str]:
    """The layer classes accelerate must keep whole: the backbone's, and the MTP block's."""
    classes = list(getattr(model.backbone, "_no_split_modules", None) or [])
    if model.mtp is not None:
        classes.append(type(model.mtp).__name__)
    return classes


def dispatch_pipeline(
    pipe: Any, device_map: tuple | str, max_memory: dict[int | str, Any] | None = None
) -> Any:
    """``pipe`` with its LM spread by ``device_map`` (from :func:`check_device_map`) with
    accelerate, and its decoders on the device of the input embeddings."""
    model = pipe.model
    if device_map == "auto":
        placed = infer_auto_device_map(
            model,
            max_memory=max_memory,
            no_split_module_classes=no_split_modules(model),
            dtype=next(model.parameters()).dtype,
        )
    else:
        placed = dict(device_map)
        named = dict(model.named_modules())
        unknown = [name for name in placed if name and name not in named]
        if unknown:
            raise ValueError(
                f"device_map names modules the model does not have: {unknown}; the top-level "
                f"ones are {[name for name, _ in model.named_children()]}"
            )
    dispatch_model(model, device_map=placed)
    for decoder in pipe.decoders.values():
        decoder.to(execution_device(model))
    return pipe


def execution_device(model: torch.nn.Module) -> torch.device:
    """Where generation makes its tensors: the device of the input embeddings (for a model
    spread over devices, not necessarily that of its first parameter)."""
    return model.get_input_embeddings().weight.device
