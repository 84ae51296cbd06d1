"""MTP weights a release ships beside its backbone, loaded into Omni's ``MultiTokenPredictor``.

transformers' ``exaone_moe`` drops the K-EXAONE release's MTP tensors on load
(``ExaoneMoePreTrainedModel._keys_to_ignore_on_load_unexpected = [r"mtp.*"]``), so nothing in
transformers reads them; this module does, by the names the public serving code uses:

- vLLM ``vllm/model_executor/models/exaone_moe_mtp.py`` (PR vllm-project/vllm#31621,
  ``ExaoneMoeMultiTokenPredictor``; TensorRT-LLM PR NVIDIA/TensorRT-LLM#10796 reads the same):
  ``mtp.pre_fc_norm_embedding``, ``mtp.pre_fc_norm_hidden`` (RMSNorms of the next token's
  embedding and of the backbone's last hidden state), ``mtp.fc`` (``Linear(2H -> H)`` over
  ``cat([embedding, hidden])``), ``mtp.layers.{k}.*`` (an ``ExaoneMoeDecoderLayer`` whose MLP is
  always dense, ``is_mtp=True``), ``mtp.norm`` (final RMSNorm); the embedding and LM head are
  the backbone's. The depth is the config's ``num_nextn_predict_layers`` (1 in the release).

Omni's module is the same computation: ``hidden_norm``, ``embed_norm``, ``proj`` (over
``cat([hidden, embedding])``, so the release's ``fc`` columns are swapped on load), and a
one-layer model of the backbone's type (``block.layers.0.*`` and ``block.norm``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

# Release name -> Omni MTP name, by backbone model_type; "{rest}" is the decoder layer's own name.
RELEASE_NAMES: dict[str, dict[str, str]] = {
    "exaone_moe": {
        "mtp.pre_fc_norm_hidden.weight": "hidden_norm.weight",
        "mtp.pre_fc_norm_embedding.weight": "embed_norm.weight",
        "mtp.fc.weight": "proj.weight",
        "mtp.norm.weight": "block.norm.weight",
        "mtp.layers.0.{rest}": "block.layers.0.{rest}",
    }
}
# Projections whose input is cat([embedding, hidden]) in the release (Omni's is the reverse).
EMBEDDING_FIRST = {"exaone_moe": ("mtp.fc.weight",)}


def release_mtp_names(folder: Path) -> dict[str, str]:
    """Release tensor name -> Omni MTP parameter name for the MTP tensors the folder holds
    (empty when it holds none); a layout Omni cannot load faithfully is a ``ValueError``."""
    from omni.backbones import weight_map

    config = json.loads((folder / "config.json").read_text())
    shipped = [name for name in weight_map(folder) if name.startswith("mtp.")]
    if not shipped:
        return {}
    model_type = config["model_type"]
    if model_type not in RELEASE_NAMES:
        raise ValueError(
            f"{folder} ships {len(shipped)} mtp.* tensors but Omni knows no MTP layout for "
            f"{model_type!r}; build with mtp_layers=0 or add its names to omni.release_mtp"
        )
    depth = config.get("num_nextn_predict_layers", 1)
    if depth != 1:
        raise ValueError(f"{folder} has {depth} MTP layers; Omni's MTP module is depth 1")
    kinds = config.get("mtp_layer_types") or ["full_attention"]
    if kinds != ["full_attention"]:  # Omni's MTP block is one full-attention layer
        raise ValueError(f"{folder}: MTP layer types {kinds} differ from Omni's full attention")
    return {name: _omni_name(model_type, name, folder) for name in shipped}


def _omni_name(model_type: str, name: str, folder: Path) -> str:
    for release, omni in RELEASE_NAMES[model_type].items():
        if release.endswith("{rest}") and name.startswith(release[: -len("{rest}")]):
            return omni.format(rest=name[len(release) - len("{rest}") :])
        if release == name:
            return omni
    raise ValueError(f"{folder}: the MTP tensor {name} has no place in Omni's MTP module")


def check_release_mtp(folder: Path, names: dict[str, str], config: Any) -> None:
    """Every parameter of the MTP module Omni builds for ``config`` has a release tensor, checked
    on a meta-device module before any weight is read."""
    from omni.mtp import MultiTokenPredictor

    with torch.device("meta"):
        expected = set(MultiTokenPredictor(config).state_dict())
    missing = sorted(expected - set(names.values()))
    if missing:
        raise ValueError(f"the MTP tensors in {folder} lack {missing[:5]} (Omni MTP names)")


def load_release_mtp(mtp: nn.Module, folder: Path, names: dict[str, str], config: Any) -> None:
    """Copy the release's MTP tensors into ``mtp``, each of the shape Omni's module has."""
    from omni.backbones import weight_map

    files = weight_map(folder)
    by_file: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_file[files[name]].append(name)
    dtype = next(mtp.parameters()).dtype
    state: dict[str, torch.Tensor] = {}
    for file, file_names in by_file.items():
        with safe_open(folder / file, framework="pt") as handle:
            for name in file_names:
                state[names[name]] = _as_omni(handle.get_tensor(name), name, config).to(dtype)
    expected = mtp.state_dict()
    for name, tensor in state.items():
        if name not in expected or expected[name].shape != tensor.shape:
            shape = tuple(expected[name].shape) if name in expected else "no such parameter"
            raise ValueError(
                f"the release's MTP tensor for {name} has shape {tuple(tensor.shape)}; "
                f"Omni's MTP module expects {shape}"
            )
    mtp.load_state_dict(state, strict=True)


def _as_omni(tensor: torch.Tensor, name: str, config: Any) -> torch.Tensor:
    if name in EMBEDDING_FIRST.get(config.model_type, ()):
        embedding, hidden = tensor.split(config.hidden_size, dim=1)
        return torch.cat([hidden, embedding], dim=1)
    return tensor
