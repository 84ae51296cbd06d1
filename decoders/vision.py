"""Diffusion image decoder: semantic image codes -> pixels.

A diffusers ``UNet2DConditionModel`` cross-attends to the embeddings of the code grid (a
learned table of ``codebook_size`` rows plus one null row, plus row/column position
embeddings) and is trained with flow matching (``FlowMatchEulerDiscreteScheduler``
convention: ``x_t = (1 - sigma) x_0 + sigma noise``, velocity ``noise - x_0``). The network
predicts the clean image ``x_0`` and is trained on its MSE ("x-prediction", which converges
much faster than noise/velocity prediction for patchified pixels, as in JiT, Li & He 2025);
the velocity the scheduler needs is ``(x_t - x_0) / sigma``. Sampling runs
the same scheduler's Euler steps (few: 4-8) with classifier-free guidance against the null
condition, which training shows with probability ``cond_dropout``. Pixels are modelled
directly (64x64 at micro scale, no VAE). The output size comes from the sequence's ratio token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from decoders.base import CodeDecoder, as_code_tensor
from omni.common.ratios import ASPECT_RATIOS as RATIOS  # ratio name -> (width, height)

# Every side is a multiple of this, so patching and the UNet's down/up-sampling divide it.
SIDE_MULTIPLE = 16
# Floor of sigma when turning a predicted x_0 into a velocity, only against division by 0.
MIN_SIGMA = 1e-4
# Distance from the median colour (in [-1, 1] units, 0.2 = 25 of 255 levels) past which a pixel
# counts as part of an object for the loss weighting; above the toy world's texture noise.
OBJECT_CONTRAST = 0.2
OBJECT_MARGIN = 2  # pixels of background around an object weighted as the object


def image_shape(ratio: str, size: int) -> tuple[int, int]:
    """``(height, width)`` for a ratio token name: the long side is ``size`` and the short side
    is rounded to a multiple of 16."""
    if ratio not in RATIOS:
        raise ValueError(f"unknown aspect ratio {ratio!r}; expected one of {', '.join(RATIOS)}")
    w, h = RATIOS[ratio]
    longest = max(w, h)

    def side(part: int) -> int:
        return max(SIDE_MULTIPLE, round(size * part / longest / SIDE_MULTIPLE) * SIDE_MULTIPLE)

    return side(h), side(w)


@dataclass
class ImageDecoderConfig:
    codebook_size: int = 512
    max_code_rows: int = 8
    max_code_cols: int = 8
    image_size: int = 64
    code_dim: int = 32
    patch_size: int = 4
    block_out_channels: list[int] = field(default_factory=lambda: [32, 48, 64])
    # Cross-attention at the middle level, whose 8x8 grid is the code grid of a 64x64 image.
    down_block_types: list[str] = field(
        default_factory=lambda: ["DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    )
    up_block_types: list[str] = field(
        default_factory=lambda: ["UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
    )
    layers_per_block: int = 1
    attention_head_dim: int = 16
    norm_num_groups: int = 8
    cond_dropout: float = 0.1
    num_train_timesteps: int = 1000


class ImageDecoder(CodeDecoder):
    """Code grid ``[rows, cols]`` -> ``PIL.Image`` by few-step guided flow-matching sampling."""

    kind = "diffusion_image"

    def __init__(self, config: ImageDecoderConfig) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.config = config
        self.null_code = config.codebook_size  # the extra row: "no condition" for CFG
        self.code_embedding = nn.Embedding(config.codebook_size + 1, config.code_dim)
        self.row_embedding = nn.Embedding(config.max_code_rows, config.code_dim)
        self.col_embedding = nn.Embedding(config.max_code_cols, config.code_dim)
        self.unet = UNet2DConditionModel(
            sample_size=config.image_size // config.patch_size,
            in_channels=3 * config.patch_size**2 + config.code_dim,
            out_channels=3 * config.patch_size**2,
            down_block_types=tuple(config.down_block_types),
            up_block_types=tuple(config.up_block_types),
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            cross_attention_dim=config.code_dim,
            attention_head_dim=config.attention_head_dim,
            norm_num_groups=config.norm_num_groups,
        )

    def to_config(self) -> dict[str, Any]:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageDecoder:
        return cls(ImageDecoderConfig(**config))

    def scheduler(self) -> Any:
        """A fresh flow-matching Euler scheduler (schedulers hold per-sampling state)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=self.config.num_train_timesteps)

    # -- the network --------------------------------------------------------------------------
    def condition(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, rows, cols]`` codes (``null_code`` allowed) -> ``[B, rows * cols, code_dim]``."""
        _, rows, cols = codes.shape
        position = self.row_embedding.weight[:rows, None] + self.col_embedding.weight[None, :cols]
        return (self.code_embedding(codes) + position).flatten(1, 2)

    def velocity(
        self, noisy: torch.Tensor, timesteps: torch.Tensor, codes: torch.Tensor
    ) -> torch.Tensor:
        """Velocity ``noise - x_0`` implied by the predicted clean image (for the scheduler)."""
        sigmas = (timesteps / self.config.num_train_timesteps).clamp(min=MIN_SIGMA)
        sigmas = sigmas.to(noisy.device, noisy.dtype)  # the velocity keeps the sample's dtype
        return (noisy - self(noisy, timesteps, codes)) / sigmas[:, None, None, None]

    def forward(
        self, noisy: torch.Tensor, timesteps: torch.Tensor, codes: torch.Tensor
    ) -> torch.Tensor:
        """Predicted clean image ``x_0`` for ``noisy [B, 3, H, W]`` at ``timesteps [B]``.

        The UNet works on ``patch_size``-unshuffled pixels (16x16x48 for 64x64 RGB: 16x fewer
        positions, which is what makes pixel-space training affordable on a CPU), and sees the
        code embeddings twice: as cross-attention tokens, and as a map nearest-upsampled to its
        grid and concatenated to its input, since each code covers a known image patch."""
        patch = self.config.patch_size
        tokens = self.condition(codes)
        x = F.pixel_unshuffle(noisy, patch)
        rows, cols = codes.shape[1:]
        grid = tokens.transpose(1, 2).reshape(codes.shape[0], -1, rows, cols)
        x = torch.cat([x, F.interpolate(grid, size=x.shape[-2:], mode="nearest")], dim=1)
        clean = self.unet(x, timesteps, encoder_hidden_states=tokens).sample
        return F.pixel_shuffle(clean, patch)

    def training_loss(
        self, images: torch.Tensor, codes: torch.Tensor, object_weight: float = 0.0
    ) -> torch.Tensor:
        """x_0-prediction loss on ``images [B, 3, H, W]`` in [-1, 1] at uniform flow-matching
        noise levels; the condition is replaced by the null condition with probability
        ``cond_dropout``.

        ``object_weight`` > 0 weighs every pixel that stands out from its image's median colour,
        and a margin around it (``object_mask``), ``1 + object_weight`` times the rest. A plain
        mean is ruled by the background: a small object is 1% of a 64x64 image, so its
        silhouette, which is what tells a star from a triangle, hardly moves the loss."""
        batch = images.shape[0]
        drop = torch.rand(batch, device=codes.device) < self.config.cond_dropout
        codes = torch.where(drop[:, None, None], torch.full_like(codes, self.null_code), codes)
        sigmas = torch.rand(batch, device=images.device)
        noise = torch.randn_like(images)
        noisy = (1 - sigmas[:, None, None, None]) * images + sigmas[:, None, None, None] * noise
        error = (self(noisy, sigmas * self.config.num_train_timesteps, codes) - images) ** 2
        if object_weight <= 0:
            return error.mean()
        weight = 1 + object_weight * object_mask(images)
        return (weight * error).sum() / (weight.sum() * images.shape[1])

    # -- sampling -----------------------------------------------------------------------------
    def check_codes(self, codes: Any) -> torch.Tensor:
        """User codes -> ``[rows, cols]`` LongTensor, or a ValueError saying what is wrong."""
        codes = as_code_tensor(codes, "image codes", self.config.codebook_size, ndim=2)
        rows, cols = codes.shape
        if rows > self.config.max_code_rows or cols > self.config.max_code_cols:
            raise ValueError(
                f"image code grid {rows}x{cols} is larger than this decoder's "
                f"{self.config.max_code_rows}x{self.config.max_code_cols}"
            )
        return codes

    @torch.no_grad()
    def sample(
        self,
        codes: torch.Tensor,
        height: int,
        width: int,
        steps: int = 8,
        guidance: float = 2.0,
        seed: int | None = 0,
    ) -> torch.Tensor:
        """``[B, rows, cols]`` codes -> ``[B, 3, height, width]`` images in [-1, 1].

        The noise is made where the decoder lives, in its dtype (diffusers' ``randn_tensor``);
        ``seed=None`` draws fresh noise on every call."""
        from diffusers.utils.torch_utils import randn_tensor

        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        weight = self.code_embedding.weight
        batch, codes = codes.shape[0], codes.to(weight.device)
        generator = torch.Generator(device=weight.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        shape = (batch, 3, height, width)
        x = randn_tensor(shape, generator=generator, device=weight.device, dtype=weight.dtype)
        condition = torch.cat([codes, torch.full_like(codes, self.null_code)])
        scheduler = self.scheduler()
        scheduler.set_timesteps(steps, device=weight.device)
        for t in scheduler.timesteps:
            both = self.velocity(torch.cat([x, x]), t.expand(2 * batch), condition)
            conditional, unconditional = both.chunk(2)
            velocity = unconditional + guidance * (conditional - unconditional)
            x = scheduler.step(velocity, t, x).prev_sample
        return x.clamp(-1, 1)

    def decode(
        self,
        codes: Any,
        ratio: str = "1:1",
        steps: int = 8,
        guidance: float = 2.0,
        seed: int | None = 0,
        **conditioning: Any,
    ) -> Image.Image:
        """Code grid ``[rows, cols]`` -> RGB image sized by the ratio token name."""
        if conditioning:
            raise ValueError(f"unknown image decoder options: {', '.join(conditioning)}")
        height, width = image_shape(ratio, self.config.image_size)
        self.eval()
        image = self.sample(self.check_codes(codes)[None], height, width, steps, guidance, seed)
        return to_pil(image[0])


def object_mask(images: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` float mask of the pixels of ``images [B, 3, H, W]`` (in [-1, 1]) that
    differ from their image's per-channel median colour by more than ``OBJECT_CONTRAST``, grown
    by ``OBJECT_MARGIN`` pixels. The margin weighs the background next to an object as much as
    the object: weighting only the object's own pixels pays the model to bleed object colour
    into the background around it wherever an edge is uncertain, and objects grow."""
    median = images.flatten(2).median(dim=2).values[:, :, None, None]
    mask = ((images - median).abs().amax(dim=1, keepdim=True) > OBJECT_CONTRAST).float()
    return F.max_pool2d(mask, 2 * OBJECT_MARGIN + 1, stride=1, padding=OBJECT_MARGIN)


def to_pil(image: torch.Tensor) -> Image.Image:
    """``[3, H, W]`` in [-1, 1] -> RGB ``PIL.Image``."""
    pixels = ((image.float().permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
    return Image.fromarray(pixels.to(torch.uint8).cpu().numpy(), "RGB")


def from_pil(image: Image.Image) -> torch.Tensor:
    """RGB ``PIL.Image`` -> ``[3, H, W]`` float tensor in [-1, 1]."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1) / 127.5 - 1
