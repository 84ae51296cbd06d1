"""Depth-1 multi-token prediction (DeepSeek-V3, HyperCLOVA X Omni).

At position t the module sees RMSNorm(h_t) (the backbone's last hidden state) and
RMSNorm(e_{t+1}) (the embedding of the next token, continuous slots included), projects
their concatenation back to the hidden size, runs one transformer layer of the backbone's
own kind, and predicts token t+2 through the backbone's shared LM head. The transformer layer
is a one-layer model of the backbone's ``model_type`` built by transformers, so it has the
same attention, rotary embedding and cache handling as the backbone.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, PreTrainedConfig


def one_layer_config(backbone_config: PreTrainedConfig) -> PreTrainedConfig:
    """The backbone config cut to one full-attention layer (its first, dense-or-MoE kind)."""
    config = copy.deepcopy(backbone_config)
    config.num_hidden_layers = 1
    for name in ("layer_types", "mlp_layer_types"):
        value = getattr(config, name, None)
        if isinstance(value, list):
            kinds = {"layer_types": "full_attention", "mlp_layer_types": value[0]}
            setattr(config, name, [kinds[name]])
    return config


class MultiTokenPredictor(nn.Module):
    """Predicts token t+2 from the hidden state at t and the embedding of token t+1."""

    def __init__(self, backbone_config: PreTrainedConfig) -> None:
        super().__init__()
        hidden = backbone_config.hidden_size
        eps = getattr(backbone_config, "rms_norm_eps", 1e-6)
        self.hidden_norm = nn.RMSNorm(hidden, eps=eps)
        self.embed_norm = nn.RMSNorm(hidden, eps=eps)
        self.proj = nn.Linear(2 * hidden, hidden, bias=False)
        self.block = AutoModel.from_config(one_layer_config(backbone_config))
        # The block reads projected states, never token ids: its own embedding table would be
        # a second copy of the vocabulary, so it is dropped (the head and embedding are shared).
        self.block.embed_tokens = None

    def forward(
        self,
        hidden_states: torch.Tensor,
        next_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """``[B, T, H]`` states at t and embeddings of t+1 -> states that predict t+2."""
        fused = torch.cat([self.hidden_norm(hidden_states), self.embed_norm(next_embeds)], dim=-1)
        out = self.block(
            inputs_embeds=self.proj(fused),
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
        )
        return out.last_hidden_state, out.cache
