"""Semantic image tokenizer: frozen vision-encoder patch features -> a grid of discrete codes.

The codes are trained to reconstruct the encoder's features (semantic, not pixels), as in
HyperCLOVA X Omni's vision tokenizer (27x27 codes, 65,536 entries; here 8x8 and 512 at micro
scale). Pipeline: ``VisionEncoder.features`` -> resample to ``grid x grid`` -> standardise with
per-channel statistics of the training features -> conv down to ``code_dim`` -> vector quantiser
(``vector_quantize_pytorch.VectorQuantize``: EMA codebook, dead codes re-seeded from the batch so
the codebook does not collapse) -> conv decoder back to the features.

The encoder is frozen (training it here too would make "reconstruct the features" chase a
moving target). Pass an open_clip name and checkpoint in ``encoder_config`` to tokenize real
CLIP features. With no such weights here, the shipped tokenizer's micro ViT was pretrained
first on the toy world with dense per-patch labels (``omni train vision-encoder``,
``encoders.vision_pretrain``) and handed over with ``encoder=``: a random ViT keeps colour and
position, but codes of its features lose the shape of small objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from vector_quantize_pytorch import VectorQuantize

from encoders import VisionEncoder, build_encoder
from tokenizers_mm.base import CodeTokenizer

DEFAULT_ENCODER = {"model_name": "micro-vit"}


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> tuple[float, float]:
    """Share of the codebook that ``codes`` use, and the perplexity of their histogram."""
    counts = torch.bincount(codes.flatten(), minlength=codebook_size).float()
    probs = counts[counts > 0] / counts.sum()
    return (counts > 0).float().mean().item(), torch.exp(-(probs * probs.log()).sum()).item()


def _conv_stack(dims: Sequence[int]) -> nn.Sequential:
    """1x1 in, 3x3 convs in the middle (neighbouring codes give context), 1x1 out; GELU between."""
    layers: list[nn.Module] = []
    for index, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        inner = 0 < index < len(dims) - 2
        layers += [nn.Conv2d(d_in, d_out, 3 if inner else 1, padding=1 if inner else 0), nn.GELU()]
    return nn.Sequential(*layers[:-1])


class SemanticImageTokenizer(CodeTokenizer):
    """Image -> ``[grid, grid]`` code ids of a frozen vision encoder's features.

    Args:
        encoder_config: ``encoders.VisionEncoder`` options (``type`` optional; default micro-vit).
        grid: side of the code grid (``codes_per_image = grid**2``).
        codebook_size: number of codes.
        code_dim: dimension of a code vector (low, which keeps the codebook in use).
        hidden: channels of the conv encoder/decoder around the quantiser.
        ema_decay, dead_code_threshold, commitment_weight: ``VectorQuantize`` settings.
    """

    kind = "image"

    def __init__(
        self,
        encoder_config: dict[str, Any] | None = None,
        grid: int = 8,
        codebook_size: int = 512,
        code_dim: int = 16,
        hidden: int = 128,
        ema_decay: float = 0.95,
        dead_code_threshold: float = 2.0,
        commitment_weight: float = 0.25,
    ) -> None:
        super().__init__()
        if grid < 1 or codebook_size < 2:
            raise ValueError(f"need grid >= 1 and codebook_size >= 2, got {grid}, {codebook_size}")
        self.encoder_config = {**DEFAULT_ENCODER, **(encoder_config or {}), "type": "vision"}
        self.encoder: VisionEncoder = build_encoder(self.encoder_config)
        self.encoder.requires_grad_(False).eval()
        width = self.encoder.width
        self.grid, self.codebook_size, self.code_dim, self.hidden = (
            grid,
            codebook_size,
            code_dim,
            hidden,
        )
        self.vq_options = {
            "ema_decay": ema_decay,
            "dead_code_threshold": dead_code_threshold,
            "commitment_weight": commitment_weight,
        }
        # Per-channel statistics of the training features: without them a random ViT's shared
        # feature direction makes a constant guess score cosine ~0.98 against the raw features.
        self.register_buffer("feature_mean", torch.zeros(width))
        self.register_buffer("feature_std", torch.ones(width))
        self.down = _conv_stack([width, hidden, hidden, code_dim])
        self.quantizer = VectorQuantize(
            dim=code_dim,
            codebook_size=codebook_size,
            decay=ema_decay,
            threshold_ema_dead_code=dead_code_threshold,
            commitment_weight=commitment_weight,
            accept_image_fmap=True,
        )
        self.up = _conv_stack([code_dim, hidden, hidden, hidden, width])

    def use_encoder(self, encoder: VisionEncoder) -> None:
        """Replace the frozen encoder by ``encoder`` (config and weights); before training."""
        if encoder.width != self.encoder.width:
            raise ValueError(
                f"encoder width {encoder.width} differs from the tokenizer's {self.encoder.width}"
            )
        self.encoder_config = {**encoder.to_config(), "pretrained": None}
        self.encoder = encoder.requires_grad_(False).eval()

    @property
    def codes_per_image(self) -> int:
        return self.grid * self.grid

    def train(self, mode: bool = True) -> SemanticImageTokenizer:
        super().train(mode)
        self.encoder.eval()  # frozen: never in training mode
        return self

    @torch.no_grad()
    def features(self, images: Any) -> torch.Tensor:
        """Encoder features resampled to the code grid, ``[B, width, grid, grid]``.

        ``images``: a ``[B, 3, S, S]`` preprocessed batch or a list of raw images.
        """
        return self.pool_to_grid(self.encoder.features(images))

    def pool_to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Encoder patch features ``[B, side*side, width]`` -> ``[B, width, grid, grid]``."""
        side = math.isqrt(tokens.shape[1])
        fmap = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)
        return F.adaptive_avg_pool2d(fmap, self.grid)

    def fit_feature_stats(self, features: torch.Tensor) -> None:
        """Set the standardisation from training features ``[N, width, grid, grid]``."""
        flat = features.transpose(0, 1).flatten(1)
        self.feature_mean.copy_(flat.mean(1))
        self.feature_std.copy_(flat.std(1).clamp_min(1e-6))

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean[:, None, None]) / self.feature_std[:, None, None]

    def quantise(
        self, features: torch.Tensor, freeze_codebook: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features -> (code vectors ``[B, code_dim, g, g]``, codes ``[B, g, g]``, VQ loss)."""
        quantised, codes, vq_loss = self.quantizer(
            self.down(self.standardise(features)), freeze_codebook=freeze_codebook
        )
        return quantised, codes.long(), vq_loss.sum()

    def reconstruct(self, quantised: torch.Tensor) -> torch.Tensor:
        """Code vectors ``[B, code_dim, g, g]`` -> standardised features ``[B, width, g, g]``."""
        return self.up(quantised)

    def loss(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss (MSE + cosine distance on standardised features + VQ) and the cosine."""
        quantised, _, vq_loss = self.quantise(features)
        target = self.standardise(features)
        reconstruction = self.reconstruct(quantised)
        cosine = F.cosine_similarity(reconstruction, target, dim=1).mean()
        return F.mse_loss(reconstruction, target) + (1 - cosine) + vq_loss, cosine

    @torch.no_grad()
    def encode(self, images: Any) -> torch.Tensor:
        """One image (PIL, path, bytes, array) -> ``[grid, grid]`` codes; a list of images or a
        preprocessed ``[B, 3, S, S]`` tensor -> ``[B, grid, grid]``. Deterministic."""
        single = not isinstance(images, (list, tuple)) and not (
            isinstance(images, torch.Tensor) and images.dim() == 4
        )
        batch = [images] if single else images
        if isinstance(batch, (list, tuple)) and not batch:
            raise ValueError("no images to encode: got an empty list")
        _, codes, _ = self.quantise(self.features(batch), freeze_codebook=True)
        return codes[0] if single else codes

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor) or codes.dtype not in (torch.int32, torch.int64):
            raise ValueError("codes must be an integer tensor of image code ids")
        if codes.shape[-2:] != (self.grid, self.grid) or codes.dim() not in (2, 3):
            raise ValueError(
                f"codes must be [{self.grid}, {self.grid}] or [B, {self.grid}, {self.grid}], "
                f"got {tuple(codes.shape)}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(
                f"code ids must lie in [0, {self.codebook_size}), got {codes.min()}..{codes.max()}"
            )
        return codes.long()

    def code_embeddings(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of ``codes`` in row-major order: ``[grid*grid, code_dim]``
        (``[B, grid*grid, code_dim]`` for a batch) — what decoders condition on."""
        codes = self._check_codes(codes)
        return self.quantizer.codebook[codes.flatten(-2)]

    @torch.no_grad()
    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> reconstructed encoder features (raw scale) ``[grid*grid, width]`` (or batched)."""
        vectors = self.code_embeddings(codes)
        batch = vectors.reshape(-1, self.grid, self.grid, self.code_dim).permute(0, 3, 1, 2)
        fmap = self.reconstruct(batch) * self.feature_std[:, None, None]
        fmap = fmap + self.feature_mean[:, None, None]
        flat = fmap.flatten(2).transpose(1, 2)
        return flat.reshape(*codes.shape[:-2], self.codes_per_image, -1)

    def to_config(self) -> dict[str, Any]:
        encoder = {k: v for k, v in self.encoder.to_config().items() if k != "type"}
        return {
            "encoder_config": encoder,
            "grid": self.grid,
            "codebook_size": self.codebook_size,
            "code_dim": self.code_dim,
            "hidden": self.hidden,
            **self.vq_options,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SemanticImageTokenizer:
        return cls(**config)


@torch.no_grad()
def encode_features(
    tokenizer: SemanticImageTokenizer, images: Sequence[Any], batch_size: int = 64
) -> torch.Tensor:
    """Grid features ``[N, width, grid, grid]`` of many images, in batches with a progress bar."""
    from tqdm import tqdm

    if not images:
        raise ValueError("no images given")
    chunks = range(0, len(images), batch_size)
    return torch.cat(
        [
            tokenizer.features(list(images[i : i + batch_size]))
            for i in tqdm(chunks, desc="features")
        ]
    )


def train_image_tokenizer(
    out_dir: str | Path,
    images: Sequence[Any],
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    checkpoint_every: int = 200,
    tokenizer: SemanticImageTokenizer | None = None,
    encoder: str | Path | None = None,
    **config: Any,
) -> SemanticImageTokenizer:
    """Train on ``images`` (any form ``VisionEncoder.preprocess`` takes) and save the final
    tokenizer to ``out_dir``.

    ``encoder``: a folder saved by ``VisionEncoder.save_pretrained`` (e.g. by ``omni train
    vision-encoder``) whose config and weights become the frozen encoder.

    The encoder is frozen, so its features are computed once up front and batches are drawn
    from them. Every ``checkpoint_every`` steps, and at the end, ``out_dir/checkpoint`` gets the
    weights (with the codebook's EMA state) and the AdamW moments. Each step's randomness (the
    batch, the re-seeding of dead codes) is seeded from ``(seed, step)``, so a rerun resumes
    exactly, and a rerun with more ``steps`` continues on the schedule of the new total
    (``omni.common.schedule.tokenizer_schedule``).
    """
    from omni.common.loop import TrainLoop
    from omni.common.schedule import tokenizer_schedule

    out_dir = Path(out_dir)
    checkpoint = out_dir / "checkpoint"
    if (checkpoint / "config.json").is_file():
        tokenizer = SemanticImageTokenizer.from_pretrained(checkpoint)
    torch.manual_seed(seed)
    if tokenizer is None:
        tokenizer = SemanticImageTokenizer(**config)
        if encoder is not None:
            tokenizer.use_encoder(VisionEncoder.from_pretrained(encoder))
    features = encode_features(tokenizer, images)
    params = [p for p in tokenizer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    loop = TrainLoop(
        checkpoint,
        steps,
        {"tokenizer": tokenizer},
        {"tokenizer": optimizer},
        schedule=tokenizer_schedule(steps),
        checkpoint_every=checkpoint_every,
        on_checkpoint=lambda _: tokenizer.save_pretrained(checkpoint),
        desc="image tokenizer",
    )
    if loop.start == 0:
        tokenizer.fit_feature_stats(features)
    tokenizer.train()
    for step in loop:
        torch.manual_seed(seed * 1_000_003 + step)
        loss, cosine = tokenizer.loss(features[torch.randint(len(features), (batch_size,))])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loop.log(loss=loss.item(), cos=cosine.item())
    tokenizer.eval()
    tokenizer.save_pretrained(out_dir)
    return tokenizer
