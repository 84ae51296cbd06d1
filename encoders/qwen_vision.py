"""Vision understanding path of HyperCLOVA X SEED Omni: transformers' Qwen2.5-VL vision
transformer (``Qwen2_5_VisionTransformerPretrainedModel``, whose merger already does the 2x2
patch merging) and the one linear layer OmniServe puts after it, ``mm_projector`` =
``nn.Linear(out_hidden_size, LLM width)`` (NAVER-Cloud-HyperCLOVA-X/OmniServe
``encoder/vision/track_b/app/model/__init__.py``, ``_load_mm_projector``).

Images keep their aspect ratio: transformers' ``Qwen2VLImageProcessor`` resizes each one to a
multiple of ``patch_size * merge_size`` between ``min_pixels`` and ``max_pixels``, so the slot
count, ``grid_t * grid_h * grid_w / merge_size**2``, follows the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import Qwen2_5_VLVisionConfig, Qwen2VLImageProcessor
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
)

from encoders.base import ContinuousEncoder
from encoders.vision import load_rgb

MICRO_QWEN_VIT = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "patch_size": 4,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 16,
    "out_hidden_size": 48,
    "fullatt_block_indexes": [1],
}
# The fields of a release's vision_config that shape the transformer (the rest is generic
# PretrainedConfig bookkeeping, or keys such as ``in_chans`` only the original code reads).
SHAPE_FIELDS = (
    "depth",
    "hidden_size",
    "hidden_act",
    "intermediate_size",
    "num_heads",
    "in_channels",
    "patch_size",
    "spatial_merge_size",
    "temporal_patch_size",
    "tokens_per_second",
    "window_size",
    "out_hidden_size",
    "fullatt_block_indexes",
)
# HyperCLOVA X Omni's preprocessor_config.json (OmniServe encoder/vision/track_b/app/model/
# configs/preprocessor_config.json): 56x56 to 1920x1080 pixels.
MIN_PIXELS, MAX_PIXELS = 3136, 2073600


@dataclass
class QwenImage:
    """One preprocessed image: flattened patches ``[patches, C * T * P * P]`` and its grid."""

    pixel_values: torch.Tensor
    grid_thw: torch.Tensor  # [3]: temporal, height and width in patches


class QwenVisionEncoder(ContinuousEncoder):
    """Qwen2.5-VL vision transformer + linear projector, as HyperCLOVA X SEED Omni has them.

    Args:
        vision: a ``Qwen2_5_VLVisionConfig`` as a dict (``None``: the micro config).
        out_dim: backbone width.
        min_pixels / max_pixels: the area bounds an image is resized into.
    """

    modality = "image"
    kind = "qwen2_5_vl_vision"

    def __init__(
        self,
        vision: dict[str, Any] | None = None,
        out_dim: int = 64,
        min_pixels: int = MIN_PIXELS,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        super().__init__()
        if not 0 < min_pixels <= max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {min_pixels}, {max_pixels}")
        config = Qwen2_5_VLVisionConfig.from_dict({**MICRO_QWEN_VIT, **(vision or {})})
        self.out_dim, self.min_pixels, self.max_pixels = int(out_dim), min_pixels, max_pixels
        self.tower = Qwen2_5_VisionTransformerPretrainedModel(config)
        self.projector = nn.Linear(config.out_hidden_size, self.out_dim)
        self.merge_size = config.spatial_merge_size
        self.image_processor = Qwen2VLImageProcessor(
            patch_size=config.patch_size,
            temporal_patch_size=config.temporal_patch_size,
            merge_size=config.spatial_merge_size,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
        )

    def preprocess(self, signal: Any) -> QwenImage:
        """Any image (PIL, path, bytes, array; any size and mode) -> its patches and grid."""
        batch = self.image_processor(images=[load_rgb(signal)], return_tensors="pt")
        return QwenImage(batch["pixel_values"], batch["image_grid_thw"][0])

    def num_tokens(self, item: QwenImage) -> int:
        return int(item.grid_thw.prod()) // self.merge_size**2

    def merged_features(self, items: list[QwenImage]) -> torch.Tensor:
        """The transformer's merged output before the projector, ``[sum of slots,
        out_hidden_size]`` (``pooler_output`` of the transformers class)."""
        param = self.projector.weight
        pixels = torch.cat([item.pixel_values for item in items]).to(param.device, param.dtype)
        grid = torch.stack([item.grid_thw for item in items]).to(param.device)
        return self.tower(pixels, grid_thw=grid).pooler_output

    def forward(self, items: list[QwenImage]) -> list[torch.Tensor]:
        projected = self.projector(self.merged_features(items))
        return list(projected.split([self.num_tokens(item) for item in items]))

    def to_config(self) -> dict[str, Any]:
        config = self.tower.config
        return {
            "type": self.kind,
            "vision": {field: getattr(config, field) for field in SHAPE_FIELDS},
            "out_dim": self.out_dim,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }
