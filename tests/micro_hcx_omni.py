"""A synthetic micro checkpoint in the official unified HyperCLOVA X SEED Omni layout, written by
the tests themselves. Where each name comes from (NAVER-Cloud-HyperCLOVA-X/OmniServe):

- the prefixes: ``model_converter/converter.py`` (``PREFIXES``, ``LLM_KEY_MAPPING``);
- ``text_config`` / ``vision_config`` / ``audio_config``: ``model_converter/config_utils.py``;
  the vision config's fields (``model_type: qwen2_5_vl``, ``in_chans``, ``spatial_patch_size``,
  ``anyres``, ...): ``encoder/vision/track_b/app/model/configs/omni_cont_config.yaml``; the audio
  config's: ``encoder/audio/track_b/app/model/configs/audio_config.json``;
- ``model.vision_model.*``: the state dict of ``Qwen2_5_VisionTransformerPretrainedModel``,
  ``model.mm_projector.{weight,bias}``: ``nn.Linear`` (``encoder/vision/track_b/app/model``);
  ``model.audio_model.*``: ``Qwen2AudioEncoder``'s, ``model.audio_projector.fc{1,2}.*``:
  ``VLM_Mlp`` (``encoder/audio/track_b/app/model``);
- the code tokens ``<|vision{N}|>`` / ``<|audio{N}|>``: ``omni_chainer/.../v1/track_b.py``;
- ``preprocessor_config.json`` (``min_pixels`` / ``max_pixels``):
  ``encoder/vision/track_b/app/model/configs/preprocessor_config.json``.

Sizes are micro; the discrete tokenizers and the compressor get one small tensor each (they are
only refused, never read).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from micro_backbones import write_backbone
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import Qwen2_5_VLVisionConfig, Qwen2AudioEncoderConfig
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
)
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

IMAGE_CODES, AUDIO_CODES = 64, 27
CODE_TOKENS = (
    *(f"<|vision{i}|>" for i in range(IMAGE_CODES)),
    *(f"<|audio{i}|>" for i in range(AUDIO_CODES)),
)
VISION_CONFIG = {
    "model_type": "qwen2_5_vl",
    "architectures": ["Qwen2_5_VisionTransformerPretrainedModel"],
    "anyres": False,
    "max_num_grids": -1,
    "depth": 2,
    "hidden_size": 32,
    "hidden_act": "silu",
    "intermediate_size": 64,
    "num_heads": 2,
    "in_channels": 3,
    "in_chans": 3,
    "patch_size": 4,
    "spatial_patch_size": 4,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "tokens_per_second": 2,
    "window_size": 16,
    "out_hidden_size": 48,
    "fullatt_block_indexes": [1],
}
AUDIO_CONFIG = {
    "model_type": "qwen2_audio_encoder",
    "architectures": ["Qwen2AudioEncoder"],
    "num_mel_bins": 128,
    "d_model": 32,
    "encoder_layers": 2,
    "num_hidden_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "activation_function": "gelu",
    "max_source_positions": 1500,
    "scale_embedding": False,
    "init_std": 0.02,
}
PREPROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "min_pixels": 64,
    "max_pixels": 1024,
}
DISCRETE_PARTS = {
    "model.discrete_vision_model.bottleneck.regularizer.codebook.weight": (32, 8),
    "model.discrete_audio_model.quantizer.project_in.weight": (8, 16),
    "model.video_audio_compressor.layers.0.mixer.in_proj.weight": (32, 16),
}


def reference_vision(width: int, seed: int = 5) -> tuple[nn.Module, nn.Linear]:
    """transformers' vision transformer and the linear ``mm_projector``, random."""
    torch.manual_seed(seed)
    config = {k: v for k, v in VISION_CONFIG.items() if k != "model_type"}
    tower = Qwen2_5_VisionTransformerPretrainedModel(Qwen2_5_VLVisionConfig.from_dict(config))
    return tower.eval(), nn.Linear(VISION_CONFIG["out_hidden_size"], width)


def reference_audio(width: int, seed: int = 6) -> tuple[nn.Module, nn.Sequential]:
    """transformers' ``Qwen2AudioEncoder`` and ``VLM_Mlp`` (fc1, GELU, fc2), random."""
    torch.manual_seed(seed)
    config = {k: v for k, v in AUDIO_CONFIG.items() if k != "model_type"}
    encoder = Qwen2AudioEncoder(Qwen2AudioEncoderConfig.from_dict(config))
    d_model = AUDIO_CONFIG["d_model"]
    mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, width))
    return encoder.eval(), mlp


def encoder_tensors(width: int) -> dict[str, dict[str, torch.Tensor]]:
    """Shard name -> the official names of the vision and the audio part (one shard each)."""
    tower, linear = reference_vision(width)
    encoder, mlp = reference_audio(width)
    vision = {f"model.vision_model.{k}": v for k, v in tower.state_dict().items()}
    vision |= {f"model.mm_projector.{k}": v for k, v in linear.state_dict().items()}
    audio = {f"model.audio_model.{k}": v for k, v in encoder.state_dict().items()}
    audio |= {
        f"model.audio_projector.fc{i}.{p}": getattr(mlp[2 * i - 2], p)
        for i in (1, 2)
        for p in ("weight", "bias")
    }
    return {"model-vision.safetensors": vision, "model-audio.safetensors": audio}


def write_unified(folder: Path, llm: Path, drop: tuple[str, ...] = ()) -> Path:
    """The micro LLM's tensors under ``model.language_model.``, the other parts beside them
    (``drop``: names left out), one sharded index, the unified config, the tokenizer with its
    code tokens, the preprocessor config and a decoder folder."""
    folder.mkdir()
    index = json.loads((llm / "model.safetensors.index.json").read_text())["weight_map"]
    text_config = json.loads((llm / "config.json").read_text())
    shards = {}
    for shard in sorted(set(index.values())):
        with safe_open(llm / shard, framework="pt") as handle:
            shards[shard] = {
                f"model.language_model.{n}": handle.get_tensor(n) for n in handle.keys()
            }
    shards |= encoder_tensors(text_config["hidden_size"])
    shards["model-extra.safetensors"] = {n: torch.randn(s) for n, s in DISCRETE_PARTS.items()}
    weight_map = {}
    for shard, tensors in shards.items():
        tensors = {n: t.contiguous() for n, t in tensors.items() if n not in drop}
        save_file(tensors, folder / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}  # as OmniServe reads it
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    text_config.pop("architectures")
    config = {
        "text_config": text_config,
        "vision_config": VISION_CONFIG,
        "audio_config": AUDIO_CONFIG,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).write_bytes((llm / name).read_bytes())
    (folder / "vision_decoder").mkdir()
    return folder


def write_micro_hcx_omni(root: Path, drop: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """``(llm folder, unified folder)`` under ``root``."""
    llm = write_backbone(root / "llm", "hyperclovax", seed=4, added_tokens=CODE_TOKENS)
    return llm, write_unified(root / "unified", llm, drop)
