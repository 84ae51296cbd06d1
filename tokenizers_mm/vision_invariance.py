"""Style invariance for a trained image tokenizer, by feature distillation
(``tokenizers_mm.distillation``).

The student (the tokenizer's encoder, unfrozen) sees scenes drawn in the training styles, the
teacher (a frozen copy of the original) the same scenes drawn in the style it was trained on,
and the loss is the distance of the student's pre-quantisation latents and standardised
features to the teacher's. The codebook, the latent projections and the decoders stay as they
are, so the image decoder and every LM trained on the codes stay valid.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from tokenizers_mm.distillation import PairMaker, distil_encoder
from tokenizers_mm.vision import SemanticImageTokenizer


def _latents(tokenizer: SemanticImageTokenizer, encoder, images) -> tuple[torch.Tensor, ...]:
    """(standardised grid features, pre-quantisation latents) of ``images`` under ``encoder``."""
    features = tokenizer.standardise(tokenizer.pool_to_grid(encoder.features(images)))
    return features, tokenizer.down(features)


def _codes(tokenizer: SemanticImageTokenizer, latents: torch.Tensor) -> torch.Tensor:
    """The codes of pre-quantisation latents (the quantizer is in eval mode: nothing updates)."""
    return tokenizer.quantizer(latents, freeze_codebook=True)[1]


def distil_style_invariance(
    tokenizer: SemanticImageTokenizer,
    make_pairs: PairMaker,
    out_dir: str | Path,
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 3e-4,
    seed: int = 0,
    checkpoint_every: int = 100,
) -> SemanticImageTokenizer:
    """Tune ``tokenizer``'s encoder so styled images give the original codes; save the result
    to ``out_dir``. A rerun resumes from ``out_dir/checkpoint`` exactly."""

    def pair_loss(student, teacher, styled, canonical):
        with torch.no_grad():
            target_features, target = _latents(tokenizer, teacher, canonical)
        features, latents = _latents(tokenizer, student, styled)
        loss = F.mse_loss(latents, target) + F.mse_loss(features, target_features)
        with torch.no_grad():
            same = _codes(tokenizer, latents) == _codes(tokenizer, target)
        return loss, {"same_codes": same.float().mean().item()}

    tokenizer.down.requires_grad_(False)
    tokenizer.eval()
    tokenizer.encoder = distil_encoder(
        tokenizer.encoder, make_pairs, pair_loss, out_dir, steps, batch_size, lr, seed,
        checkpoint_every,
    )  # fmt: skip
    tokenizer.save_pretrained(out_dir)
    return tokenizer
