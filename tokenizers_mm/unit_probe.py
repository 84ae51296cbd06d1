"""The unit CTC probe: a fresh reader (embedding + BiLSTM + CTC) trained on the frozen unit ids
of a speech tokenizer; its character error rate on held-out speech measures how much content
the units carry (``benchmarks/bench_speech_units.py``)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR

from omni.common.loop import TrainLoop
from tokenizers_mm.audio import DEFAULT_ALPHABET, CharacterCTC, CTCHead, _pad


class UnitCTCProbe(nn.Module):
    """A fresh reader of frozen unit ids: embedding + BiLSTM + CTC. Its character error rate
    on held-out speech measures how much content the units carry.

    Args:
        codebook_size: how many unit ids there are.
        dim, layers: embedding width and BiLSTM depth (``dim // 2`` per direction).
        dropout: on the embeddings and between BiLSTM layers.
        substitute: in training, the share of ids swapped for random ids (an augmentation
            against memorising a few thousand clips; it also slows convergence a lot, so the
            benchmark leaves it at 0).
        levels: FSQ levels of the tokenizer; when given, each id also enters as its grid
            coordinates (the implicit FSQ codebook), not only as a learned row.
    """

    def __init__(
        self,
        codebook_size: int,
        alphabet: str = DEFAULT_ALPHABET,
        dim: int = 128,
        layers: int = 2,
        dropout: float = 0.0,
        substitute: float = 0.0,
        levels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.ctc = CharacterCTC(alphabet)
        self.codebook_size, self.substitute = codebook_size, substitute
        self.embed = nn.Embedding(codebook_size, dim)
        self.drop = nn.Dropout(dropout)
        self.coordinates: nn.Linear | None = None
        if levels:
            if math.prod(levels) != codebook_size:
                raise ValueError(f"FSQ levels {list(levels)} do not make {codebook_size} units")
            sizes = torch.tensor([int(level) for level in levels])
            basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), sizes[:-1]]), 0)
            digits = (torch.arange(codebook_size)[:, None] // basis) % sizes
            self.register_buffer("grid", digits.float() / (sizes - 1) * 2 - 1, persistent=False)
            self.coordinates = nn.Linear(len(sizes), dim)
        self.head = CTCHead(dim, self.ctc.vocab_size, layers, upsample=2)
        self.head.context.dropout = dropout if layers > 1 else 0.0

    def forward(self, units: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and self.substitute > 0:
            units = [
                torch.where(
                    torch.rand(len(u)) < self.substitute,
                    torch.randint(self.codebook_size, (len(u),)),
                    u,
                )
                for u in units
            ]
        ids, lengths = _pad(units)
        embedded = self.embed(ids)
        if self.coordinates is not None:
            embedded = embedded + self.coordinates(self.grid[ids])
        return self.head(self.drop(embedded), lengths), lengths * self.head.upsample

    @torch.no_grad()
    def transcribe(self, units: list[torch.Tensor]) -> list[str]:
        was_training = self.training
        self.eval()
        log_probs, lengths = self(units)
        self.train(was_training)
        return [self.ctc.greedy_decode(lp[:n]) for lp, n in zip(log_probs, lengths)]


def train_unit_probe(
    train_units: Sequence[tuple[torch.Tensor, str]],
    codebook_size: int,
    steps: int = 1500,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    **probe_config: Any,
) -> UnitCTCProbe:
    """Train a ``UnitCTCProbe`` (``probe_config``: its ``alphabet``, ``dim``, ``layers``,
    ``dropout``, ``substitute``, ``levels``) on ``(unit ids, transcript)`` pairs of a frozen
    tokenizer. Batches are runs of similar lengths (little padding for the BiLSTM to read)."""
    if not train_units:
        raise ValueError("no (units, transcript) pairs to train the probe on")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    probe = UnitCTCProbe(codebook_size, **probe_config)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.01)
    loop = TrainLoop(
        None,  # a probe is retrained, never resumed
        steps,
        {"probe": probe},
        {"probe": optimizer},
        schedule=lambda optimizer, _: OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1),
        desc="unit CTC probe",
    )
    by_length = sorted(range(len(train_units)), key=lambda i: len(train_units[i][0]))
    batch_size = min(batch_size, len(by_length))
    probe.train()
    for _ in loop:
        start = rng.randrange(len(by_length) - batch_size + 1)
        batch = [train_units[i] for i in by_length[start : start + batch_size]]
        log_probs, lengths = probe([units for units, _ in batch])
        loss = probe.ctc.loss(log_probs, lengths, [text for _, text in batch])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
        optimizer.step()
        loop.log(ctc=loss.item())
    return probe.eval()
