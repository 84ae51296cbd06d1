"""Keeping MoE experts balanced, whatever router the backbone has.

Routers with a score-correction bias (``exaone_moe``, ``solar_open``, DeepSeek-V3 style) get
the auxiliary-loss-free update of DeepSeek-V3: after each optimiser step, every expert's bias
moves by ``gamma`` towards balance (down when it took more than its share of tokens, up when
less). transformers only *uses* that bias, it never updates it, so this file does. Other MoE
routers get the Switch-style auxiliary loss that transformers computes itself
(``output_router_logits=True`` -> ``outputs.aux_loss``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def bias_routers(backbone: nn.Module) -> dict[str, nn.Module]:
    """Router modules that carry an ``e_score_correction_bias`` buffer, by module name."""
    return {
        name: module
        for name, module in backbone.named_modules()
        if isinstance(getattr(module, "e_score_correction_bias", None), torch.Tensor)
    }


def has_aux_router(backbone_config) -> bool:
    """True for MoE backbones whose transformers class computes a Switch-style aux loss."""
    return hasattr(backbone_config, "output_router_logits") and hasattr(
        backbone_config, "router_aux_loss_coef"
    )


@dataclass
class ExpertLoad:
    """Tokens routed to each expert since the last reset, per router."""

    counts: dict[str, torch.Tensor]

    def fractions(self) -> dict[str, torch.Tensor]:
        return {name: c / c.sum().clamp(min=1) for name, c in self.counts.items()}

    def imbalance(self) -> float:
        """Mean over routers of max load / mean load (1.0 is perfect balance)."""
        ratios = [c.max() / c.float().mean().clamp(min=1e-9) for c in self.counts.values()]
        return float(torch.stack(ratios).mean()) if ratios else 1.0


class BiasBalancer:
    """Counts expert choices with forward hooks and applies the bias update on request."""

    def __init__(self, backbone: nn.Module, gamma: float) -> None:
        self.routers = bias_routers(backbone)
        self.gamma = gamma
        self.counts = {
            name: torch.zeros_like(r.e_score_correction_bias) for name, r in self.routers.items()
        }
        self.handles = [
            router.register_forward_hook(self._hook(name)) for name, router in self.routers.items()
        ]

    def _hook(self, name: str):
        def count(module: nn.Module, args, output) -> None:
            if not module.training:
                return
            topk_indices = output[2]
            load = torch.bincount(topk_indices.flatten(), minlength=self.counts[name].numel())
            self.counts[name] += load.to(self.counts[name].dtype)

        return count

    def load(self) -> ExpertLoad:
        return ExpertLoad({name: c.clone() for name, c in self.counts.items()})

    @torch.no_grad()
    def update(self) -> ExpertLoad:
        """Nudge each router's bias towards balance; returns and resets the counted load."""
        load = self.load()
        for name, router in self.routers.items():
            counts = self.counts[name]
            if counts.sum() == 0:
                continue
            error = counts.mean() - counts
            router.e_score_correction_bias += self.gamma * torch.sign(error)
            counts.zero_()
        return load
