"""The continuous encoders of the official HyperCLOVA X SEED Omni checkpoint, as Omni encoders
of the same transformers classes, and its code tokens, as in-place vocabulary blocks.

Names and shapes, from NAVER-Cloud-HyperCLOVA-X/OmniServe:
- ``model.vision_model.*`` is the state dict of transformers'
  ``Qwen2_5_VisionTransformerPretrainedModel`` (loaded with ``strict=True`` in
  ``encoder/vision/track_b/app/model/__init__.py``, ``_load_continuous_vision_model``; its config
  is the unified config's ``vision_config``, ``model_converter/config_utils.py``);
  ``model.mm_projector.{weight,bias}`` is ``nn.Linear(out_hidden_size, LLM width)``
  (``_load_mm_projector`` there).
- ``model.audio_model.*`` is the state dict of transformers' ``Qwen2AudioEncoder`` (the
  converter saves it as such, ``model_converter/converter.py``, ``extract_audio_encoder``; config
  ``audio_config``); ``model.audio_projector.fc{1,2}.*`` is ``VLM_Mlp(d_model, d_model, LLM
  width)`` (``encoder/audio/track_b/app/model/__init__.py``).
- The code tokens are text tokens named ``<|vision{code}|>`` and ``<|audio{code}|>``
  (``omni_chainer/.../openai/v1/track_b.py`` and ``decoder/vision/track_b/serve.py`` parse them
  back with ``<\\|vision(\\d+)\\|>`` / ``<\\|audio(\\d+)\\|>``); TA-Tok gives 27x27 = 729 codes per
  image (``bottleneck_token_num`` in the converter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from transformers import Qwen2_5_VLVisionConfig, Qwen2AudioEncoderConfig

from encoders import build_encoder
from encoders.qwen_audio import SHAPE_FIELDS as AUDIO_FIELDS
from encoders.qwen_vision import MAX_PIXELS, MIN_PIXELS
from encoders.qwen_vision import SHAPE_FIELDS as VISION_FIELDS

IMAGE_GRID = (27, 27)  # TA-Tok's 729 codes per image


@dataclass(frozen=True)
class EncoderPart:
    """One continuous encoder of the unified checkpoint: where its tensors and config live, and
    the Omni encoder kind that holds them (tower under ``tower_attr``, projector names mapped)."""

    modality: str
    kind: str
    config_key: str
    option: str  # the encoder's constructor argument that takes the config
    config_class: type  # whose defaults fill the fields a release's config leaves out
    fields: tuple[str, ...]
    tower_prefix: str
    tower_attr: str
    projector_prefix: str
    projector_names: dict[str, str]  # checkpoint name (after the prefix) -> Omni's


PARTS = (
    EncoderPart(
        "image",
        "qwen2_5_vl_vision",
        "vision_config",
        "vision",
        Qwen2_5_VLVisionConfig,
        VISION_FIELDS,
        "model.vision_model.",
        "tower",
        "model.mm_projector.",
        {"weight": "weight", "bias": "bias"},
    ),
    EncoderPart(
        "audio",
        "qwen2_audio",
        "audio_config",
        "audio",
        Qwen2AudioEncoderConfig,
        AUDIO_FIELDS,
        "model.audio_model.",
        "encoder",
        "model.audio_projector.",
        {f"fc{i}.{p}": f"{2 * i - 2}.{p}" for i in (1, 2) for p in ("weight", "bias")},
    ),
)


def encoder_config(part: EncoderPart, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The ``OmniConfig.encoders`` entry for ``part``, from the unified config (and, for images,
    the pixel bounds of the folder's ``preprocessor_config.json``)."""
    source = config.get(part.config_key)
    if not isinstance(source, dict):
        raise ValueError(
            f"{folder} has {part.tower_prefix}* tensors but its config.json has no "
            f"{part.config_key} to build them from"
        )
    defaults = part.config_class().to_dict()  # transformers' own, not Omni's micro defaults
    shape = {field: source.get(field, defaults[field]) for field in part.fields}
    entry: dict[str, Any] = {"type": part.kind, part.option: shape}
    if part.modality == "image":
        pre = folder / "preprocessor_config.json"
        pixels = json.loads(pre.read_text()) if pre.is_file() else {}
        entry["min_pixels"] = pixels.get("min_pixels", MIN_PIXELS)
        entry["max_pixels"] = pixels.get("max_pixels", MAX_PIXELS)
    return entry


def tensor_names(part: EncoderPart, weight_map: dict[str, str]) -> dict[str, str]:
    """Omni encoder state-dict name -> checkpoint name, for every tensor of ``part``."""
    names = {}
    for name in weight_map:
        if name.startswith(part.tower_prefix):
            names[f"{part.tower_attr}.{name[len(part.tower_prefix) :]}"] = name
        elif name.startswith(part.projector_prefix):
            short = name[len(part.projector_prefix) :]
            names[f"projector.{part.projector_names.get(short, short)}"] = name
    return names


def check_part(
    part: EncoderPart, entry: dict, width: int, folder: Path, weight_map: dict[str, str]
) -> dict[str, str]:
    """``tensor_names`` once every tensor the encoder needs is in the checkpoint with its shape
    (read from the safetensors headers: no weight is loaded), else a ``ValueError``."""
    with torch.device("meta"):
        expected = build_encoder({**entry, "out_dim": width}).state_dict()
    names = tensor_names(part, weight_map)
    missing = sorted(set(expected) - set(names))
    unknown = sorted(names[n] for n in set(names) - set(expected))
    if missing or unknown:
        raise ValueError(
            f"the {part.modality} encoder ({part.tower_prefix}*, {part.projector_prefix}*) does "
            f"not fit transformers' class: missing {missing[:5]}, unexpected {unknown[:5]}"
        )
    for target, source in names.items():
        with safe_open(folder / weight_map[source], framework="pt") as handle:
            shape = tuple(handle.get_slice(source).get_shape())
        if shape != tuple(expected[target].shape):
            raise ValueError(
                f"{source} has shape {shape}, but the {part.modality} encoder built from "
                f"{part.config_key} needs {tuple(expected[target].shape)}"
            )
    return names


def load_part(encoder: torch.nn.Module, names: dict[str, str], folder: Path, weight_map) -> None:
    """Copy the checkpoint's tensors into ``encoder``, one source shard open at a time."""
    state = encoder.state_dict()
    by_shard: dict[str, list[str]] = {}
    for target, source in names.items():
        by_shard.setdefault(weight_map[source], []).append(target)
    with torch.no_grad():
        for shard, targets in sorted(by_shard.items()):
            with safe_open(folder / shard, framework="pt") as handle:
                for target in targets:
                    state[target].copy_(handle.get_tensor(names[target]))


def code_starts(tokenizer: Any) -> dict[str, tuple[int, int]]:
    """Modality -> (first id, count) of the code tokens the tokenizer already holds."""
    vocab = tokenizer.get_vocab()
    found = {}
    for modality, stem in (("image", "vision"), ("audio", "audio")):
        first = vocab.get(f"<|{stem}0|>")
        if first is None:
            continue
        count = 0
        while vocab.get(f"<|{stem}{count}|>") == first + count:
            count += 1
        if f"<|{stem}{count + 1}|>" in vocab or f"<|{stem}{count}|>" in vocab:
            raise ValueError(
                f"the tokenizer's <|{stem}N|> tokens are not at consecutive ids (the run from "
                f"id {first} stops at code {count}), so they cannot be one code block"
            )
        found[modality] = (first, count)
    return found
