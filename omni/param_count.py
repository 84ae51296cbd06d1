"""Parameters of a whole Omni model, counted on the ``meta`` device (nothing is allocated).

``omni.presets.count_parameters`` counts a backbone alone; an Omni model also holds the code rows
appended to its embedding and LM head (specials, image and audio codes), its continuous encoders
and their projectors, and the MTP module. This counts each part of the model Omni builds for a
named configuration, with the encoders ``encoders`` names (``micro`` by default for micro
configurations, ``full`` for the others):

- ``micro``: the micro ViT and Whisper encoder of the tests;
- ``full``: the kit's encoder kinds at published sizes: the Whisper-large-v3 encoder
  (128 mel bins, the encoder Qwen2-Audio and HyperCLOVA X Omni's audio path use) and the
  open_clip ViT-L-14-336 tower (a stand-in: Qwen2.5-VL's vision transformer is not an open_clip
  kind; ``omni convert hcx-omni`` is where that one belongs);
- ``none``: no encoders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from omni.presets import MICRO_ENCODERS, backbone_config, omni_config, routed_fraction

WHISPER_LARGE_V3_ENCODER = {
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
}
FULL_ENCODERS: dict[str, dict[str, Any]] = {
    "image": {"type": "vision", "model_name": "ViT-L-14-336", "token_budget": 144},
    "audio": {"type": "audio", "whisper": WHISPER_LARGE_V3_ENCODER},
}
ENCODER_SETS = {"micro": MICRO_ENCODERS, "full": FULL_ENCODERS, "none": None}


@dataclass
class OmniParameterCount:
    """Parameters by part; ``active`` counts only the routed experts a token uses."""

    name: str
    model_type: str
    backbone: int
    backbone_active: int
    code_rows: int
    encoders: dict[str, int] = field(default_factory=dict)
    projectors: int = 0
    mtp: int = 0
    mtp_active: int = 0

    @property
    def total(self) -> int:
        return (
            self.backbone
            + self.code_rows
            + sum(self.encoders.values())
            + self.projectors
            + self.mtp
        )

    @property
    def active(self) -> int:
        inactive = self.backbone - self.backbone_active + self.mtp - self.mtp_active
        return self.total - inactive

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(total=self.total, active=self.active)
        data.update(total_b=round(self.total / 1e9, 3), active_b=round(self.active / 1e9, 3))
        return data


def count_omni_parameters(name: str, encoders: str | None = None) -> OmniParameterCount:
    """Count the Omni model of configuration ``name`` with the ``encoders`` set named
    (default: ``micro`` for the micro configurations, ``full`` for the others)."""
    from omni.modeling import OmniForConditionalGeneration

    backbone_config(name)  # an unknown name is a ValueError that lists the known ones
    if encoders is None:
        encoders = "micro" if name.startswith("micro-") else "full"
    if encoders not in ENCODER_SETS:
        raise ValueError(
            f"unknown encoder set {encoders!r}; expected one of {sorted(ENCODER_SETS)}"
        )
    config = omni_config(name, encoders=ENCODER_SETS[encoders])
    with torch.device("meta"):
        model = OmniForConditionalGeneration(config)
    text_rows = model.layout.text_size
    embedding_ids = {
        id(model.get_input_embeddings().weight),
        id(model.get_output_embeddings().weight),
    }
    fraction = routed_fraction(config.backbone_config)
    count = OmniParameterCount(name, config.backbone_config.model_type, 0, 0, 0)
    for param_name, param in model.named_parameters():  # tied tensors are listed once
        size = param.numel()
        if id(param) in embedding_ids:
            text = text_rows * param.shape[1]
            count.backbone, count.backbone_active = (
                count.backbone + text,
                count.backbone_active + text,
            )
            count.code_rows += size - text
        elif param_name.startswith("backbone."):
            count.backbone += size
            count.backbone_active += _active(param_name, size, fraction)
        elif param_name.startswith("mtp."):
            count.mtp += size
            count.mtp_active += _active(param_name, size, fraction)
        elif ".projector." in param_name:
            count.projectors += size
        else:
            modality = param_name.split(".")[1]
            count.encoders[modality] = count.encoders.get(modality, 0) + size
    return count


def _active(param_name: str, size: int, fraction: float) -> int:
    return round(size * fraction) if ".mlp.experts." in param_name else size
