"""Compiled decode: a static KV cache and a ``torch.compile``d decode step (plain decoding).

A micro model's decoding step is mostly Python and kernel-launch overhead, which compilation
removes: on the CPU, a 6-layer micro-hcx-omni decoded 2.6x faster once compiled, with identical
output (``docs/benchmarks.md``). Compilation needs fixed shapes, so the cache is static, its
length rounded up to a power of two (a new length compiles anew, tens of seconds on a CPU),
and the attention mask covers the whole cache from the start (columns not yet written are
hidden by causality). Speculative decoding is not compiled: its verification widths would each
be a graph of their own. Backbones with sliding-window layers (micro-k-exaone) recompile at
every step until dynamo's recompile limit sends them back to eager execution: same output, no
gain; the option pays on full-attention backbones.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from transformers import StaticCache

_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
MIN_CACHE = 256


def static_cache(model: Any, length: int) -> StaticCache:
    """A static cache for at least ``length`` tokens, sized to a power of two."""
    size = max(MIN_CACHE, 1 << (length - 1).bit_length())
    return StaticCache(config=model.config, max_cache_len=size)


def decode_step(model: Any):
    """The backbone's forward, compiled once per model (a decoding step reads plain token
    ids, which the backbone embeds itself, so Omni's own forward adds nothing to it)."""
    if model not in _STEPS:
        _STEPS[model] = torch.compile(model.backbone, mode="default", dynamic=False)
    return _STEPS[model]


def whole_cache_mask(mask: torch.Tensor, cache: StaticCache) -> torch.Tensor:
    """The prompt's padding mask extended over every column of the cache."""
    length = max(layer.max_cache_len for layer in cache.layers)  # a full-attention layer's
    rest = length - mask.shape[1]
    return torch.cat([mask, mask.new_ones(mask.shape[0], rest)], dim=1)
