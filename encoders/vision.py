"""Vision understanding path: an open_clip ViT's patch features, merged kxk and projected by an
MLP to the backbone width, then pooled to a fixed token budget per image.

The projector follows Qwen2.5-VL / HyperCLOVA X Omni (2x2 patch merging + MLP); the final
adaptive average pooling over the merged grid is what makes the per-image slot count a
configurable budget (a perfect square no larger than the merged grid).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from open_clip.transformer import VisionTransformer
from PIL import Image, UnidentifiedImageError
from torch import nn
from torch.nn import functional as F

from encoders.base import ContinuousEncoder

MICRO_VIT = {"image_size": 64, "patch_size": 4, "width": 64, "layers": 2, "head_width": 32}


def load_rgb(image: Any) -> Image.Image:
    """An RGB PIL image from a PIL image, path, encoded bytes or ``[H, W(, C)]`` array.

    Alpha (RGBA, LA, palette with transparency) is composited on white; L, CMYK, palette,
    16-bit and float images are converted to 8-bit RGB.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = _open(io.BytesIO(bytes(image)), "image bytes")
    elif isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise ValueError(f"image file not found: {image}")
        image = _open(image, f"image file {image}")
    elif isinstance(image, (np.ndarray, torch.Tensor)):
        image = _from_array(np.asarray(image))
    elif not isinstance(image, Image.Image):
        raise ValueError(
            f"unsupported image type {type(image).__name__}: pass a PIL image, a path, "
            "encoded bytes or an [H, W] / [H, W, C] array"
        )
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        span = max(float(pixels.max() - pixels.min()), 1e-12)
        image = Image.fromarray(((pixels - pixels.min()) / span * 255).astype(np.uint8))
    return image.convert("RGB")


def _open(source: Any, what: str) -> Image.Image:
    try:
        image = Image.open(source)
        image.load()  # decode now so truncated data fails here, not later inside a transform
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot decode {what}: corrupt or not an image ({error})") from error
    return image


def _from_array(pixels: np.ndarray) -> Image.Image:
    if pixels.ndim == 3 and pixels.shape[0] in (1, 3, 4) and pixels.shape[2] not in (1, 3, 4):
        pixels = pixels.transpose(1, 2, 0)  # channels-first -> channels-last
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ValueError(f"image array must be [H, W], [H, W, 3|4], got {pixels.shape}")
    if pixels.size == 0:
        raise ValueError("image array is empty")
    if pixels.dtype != np.uint8:
        pixels = pixels.astype(np.float64)
        if not np.isfinite(pixels).all():
            raise ValueError("image array contains NaN or infinite values")
        scale = 255.0 if pixels.max() <= 1.0 else 1.0  # floats in [0, 1] or already 0..255
        pixels = np.clip(pixels * scale, 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels)


def resolve_vision_cfg(model_name: str, image_size: int | None) -> tuple[dict[str, Any], dict]:
    """open_clip ``vision_cfg`` and ``preprocess_cfg`` for a model name or ``micro-vit``."""
    if model_name == "micro-vit":
        vision_cfg, preprocess_cfg = dict(MICRO_VIT), {}
    else:
        model_cfg = open_clip.get_model_config(model_name)
        if model_cfg is None:
            raise ValueError(
                f"unknown vision model {model_name!r}: use 'micro-vit' or an open_clip name "
                f"such as {', '.join(open_clip.list_models()[:4])}"
            )
        vision_cfg = dict(model_cfg["vision_cfg"])
        preprocess_cfg = dict(model_cfg.get("preprocess_cfg", {}))
    if image_size is not None:
        vision_cfg["image_size"] = image_size
    return vision_cfg, preprocess_cfg


class VisionEncoder(ContinuousEncoder):
    """open_clip ViT + patch-merging MLP projector with a fixed token budget per image.

    Args:
        model_name: ``micro-vit`` or any open_clip model name (``ViT-B-32``, ...).
        pretrained: an open_clip checkpoint file for ``model_name`` (``None``: random init).
        image_size: input side in pixels (``None``: the model's own).
        out_dim: backbone width.
        token_budget: slots per image; a perfect square ``s*s`` with ``s`` at most the merged
            grid side (``ceil(image_size / patch_size / merge_size)``; an odd patch grid is
            padded by replicating its last row and column before merging).
        merge_size: ``k`` of the ``k x k`` patch merging.
    """

    modality = "image"
    kind = "vision"

    def __init__(
        self,
        model_name: str = "micro-vit",
        pretrained: str | None = None,
        image_size: int | None = None,
        out_dim: int = 64,
        token_budget: int = 16,
        merge_size: int = 2,
    ) -> None:
        super().__init__()
        vision_cfg, preprocess_cfg = resolve_vision_cfg(model_name, image_size)
        self.model_name, self.pretrained = model_name, pretrained
        self.image_size = int(vision_cfg["image_size"])
        self.out_dim, self.merge_size = int(out_dim), int(merge_size)
        self.tower = self._build_tower(model_name, pretrained, vision_cfg)
        self.width = self.tower.transformer.width
        self.grid = self.tower.grid_size[0]
        if self.merge_size < 1:
            raise ValueError(f"merge_size must be >= 1, got {merge_size}")
        self.merged_grid = math.ceil(self.grid / self.merge_size)
        self.token_budget = self.check_budget(token_budget)
        self.projector = nn.Sequential(
            nn.Linear(self.width * self.merge_size**2, out_dim),
            nn.GELU(),
            nn.Linear(out_dim, out_dim),
        )
        self.transform = open_clip.image_transform(
            self.image_size,
            is_train=False,
            mean=preprocess_cfg.get("mean"),
            std=preprocess_cfg.get("std"),
            resize_mode=preprocess_cfg.get("resize_mode"),
            interpolation=preprocess_cfg.get("interpolation"),
        )

    @staticmethod
    def _build_tower(
        model_name: str, pretrained: str | None, vision_cfg: dict[str, Any]
    ) -> VisionTransformer:
        if pretrained is not None:
            if model_name == "micro-vit":
                raise ValueError("pretrained weights need an open_clip model name, not micro-vit")
            if not Path(pretrained).is_file():
                raise ValueError(f"pretrained open_clip checkpoint not found: {pretrained}")
            tower = open_clip.create_model(
                model_name, pretrained=pretrained, force_image_size=vision_cfg["image_size"]
            ).visual
        else:
            tower = open_clip.model._build_vision_tower(
                embed_dim=vision_cfg["width"], vision_cfg=vision_cfg
            )
        if not isinstance(tower, VisionTransformer):
            raise ValueError(
                f"{model_name} is not an open_clip ViT; only ViT towers give patch grids"
            )
        tower.prune_intermediate_layers(indices=1, prune_head=True)  # pooled head is unused
        return tower

    def check_budget(self, budget: int) -> int:
        """``budget`` if it is a square ``s*s`` with ``1 <= s <= merged grid side``."""
        side = math.isqrt(budget) if isinstance(budget, int) and budget > 0 else 0
        if side < 1 or side * side != budget or side > self.merged_grid:
            raise ValueError(
                f"token budget {budget} must be a perfect square of at most "
                f"{self.merged_grid}x{self.merged_grid} = {self.merged_grid**2} for this "
                f"encoder (image_size {self.image_size}, merge_size {self.merge_size})"
            )
        return budget

    def preprocess(self, signal: Any) -> torch.Tensor:
        """Any image (PIL, path, bytes, array; any size and mode) -> normalised ``[3, S, S]``."""
        return self.transform(load_rgb(signal))

    def num_tokens(self, item: torch.Tensor) -> int:
        return self.token_budget

    def features(self, images: torch.Tensor | list[Any]) -> torch.Tensor:
        """Patch features before the projector, ``[B, n_patches, width]`` (row-major grid).

        ``images`` is a ``[B, 3, S, S]`` batch or a list of preprocessed items / raw images.
        """
        return self._grid(images).flatten(2).transpose(1, 2)

    def encode(self, pixels: torch.Tensor, budget: int | None = None) -> torch.Tensor:
        """``[B, 3, S, S]`` -> ``[B, budget, out_dim]`` (default budget: ``token_budget``)."""
        side = math.isqrt(self.check_budget(self.token_budget if budget is None else budget))
        grid = self._grid(pixels)
        pad = self.merged_grid * self.merge_size - self.grid  # odd grids (ViT-B-32: 7x7)
        grid = F.pad(grid, (0, pad, 0, pad), mode="replicate") if pad else grid
        merged = F.pixel_unshuffle(grid, self.merge_size)  # [B, C*k*k, g/k, g/k]
        projected = self.projector(merged.permute(0, 2, 3, 1))  # [B, g/k, g/k, out_dim]
        pooled = F.adaptive_avg_pool2d(projected.permute(0, 3, 1, 2), side)
        return pooled.flatten(2).transpose(1, 2)

    def forward(self, items: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(self.encode(torch.stack(items)))

    def _grid(self, images: torch.Tensor | list[Any]) -> torch.Tensor:
        """Last ViT block (after ``ln_post``) as a ``[B, width, grid, grid]`` map."""
        if not isinstance(images, torch.Tensor):
            images = torch.stack(
                [
                    image if isinstance(image, torch.Tensor) else self.preprocess(image)
                    for image in images
                ]
            )
        param = self.tower.conv1.weight
        if images.dim() != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"expected pixels [B, 3, {self.image_size}, {self.image_size}], got "
                f"{tuple(images.shape)}; run preprocess() first"
            )
        out = self.tower.forward_intermediates(
            images.to(param.device, param.dtype),
            indices=1,
            normalize_intermediates=True,
            intermediates_only=True,
        )
        return out["image_intermediates"][-1]

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "vision",
            "model_name": self.model_name,
            "pretrained": self.pretrained,
            "image_size": self.image_size,
            "out_dim": self.out_dim,
            "token_budget": self.token_budget,
            "merge_size": self.merge_size,
        }
