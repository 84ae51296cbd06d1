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
        self._direct: bool | None = None  # the drafting step's direct path, once probed

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
        inputs = self.proj(fused)
        if self._drafting_step(inputs, attention_mask, position_ids, cache, use_cache):
            return self._layer_step(inputs, position_ids, cache), cache
        out = self.block(
            inputs_embeds=inputs,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
        )
        return out.last_hidden_state, out.cache

    # --- the drafting step ---------------------------------------------------------------
    # A chain of k drafts is k steps of one entry each, and on a micro backbone the one-layer
    # model's own forward (its mask building, output capturing, output class) is a good part
    # of such a step. An unmasked one-entry step needs none of it (the entry sees every
    # cached one), so it calls the block's layer directly. The path is checked once against the
    # block's forward, and a backbone whose model does more than this is left on the forward.
    # Drafts only steer speculation (the main model verifies each), so answers never depend
    # on which path ran.

    def _drafting_step(self, inputs, attention_mask, position_ids, cache, use_cache) -> bool:
        if self.training or attention_mask is not None or position_ids is None:
            return False
        if cache is None or not use_cache or inputs.shape[1] != 1:
            return False
        if self._direct is None:
            self._direct = self._direct_path_matches(inputs)
        return self._direct

    def _layer_step(self, inputs: torch.Tensor, position_ids: torch.Tensor, cache: Any):
        block = self.block
        states = inputs * getattr(block, "embedding_multiplier", 1.0)
        embeddings = block.rotary_emb(states, position_ids=position_ids)
        for layer in block.layers:
            states = layer(
                states,
                attention_mask=None,
                position_embeddings=embeddings,
                position_ids=position_ids,
                cache=cache,
                use_cache=True,
            )
            states = states[0] if isinstance(states, tuple) else states
        return block.norm(states)

    @torch.no_grad()
    def _direct_path_matches(self, like: torch.Tensor) -> bool:
        """One step after three cached entries, by the block's forward and by its layer."""
        from transformers import DynamicCache

        generator = torch.Generator(device="cpu").manual_seed(0)
        context = torch.randn((1, 3, like.shape[-1]), generator=generator)
        context = context.to(like.device, like.dtype)
        step, positions = context[:, -1:], torch.arange(3, device=like.device).unsqueeze(0)
        results = []
        for direct in (False, True):
            cache = DynamicCache(config=self.block.config)
            self.block(inputs_embeds=context, position_ids=positions, cache=cache, use_cache=True)
            if direct:
                results.append(self._layer_step(step, positions[:, -1:] + 1, cache))
            else:
                out = self.block(
                    inputs_embeds=step,
                    position_ids=positions[:, -1:] + 1,
                    cache=cache,
                    use_cache=True,
                )
                results.append(out.last_hidden_state)
        tolerance = 1e-4 if like.dtype == torch.float32 else 2e-2
        return bool(torch.allclose(*results, atol=tolerance, rtol=tolerance))
