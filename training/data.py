"""Training data: JSONL manifests, weighted mixtures, cached discrete targets and packed rows.

The pipeline, from disk to a model-ready batch::

    Manifest (JSONL, checked line by line; ``training.manifests``)  ->  MixtureSampler (weighted, deterministic)
        ->  CodeCache (discrete targets tokenised once, cached on disk)
        ->  OmniProcessor.encode  ->  RowPacker (fixed-length rows)  ->  OmniBatch

Media stay paths until a sample is encoded (lazy loading). Everything that decides *which*
sample comes next is a pure function of a small JSON state, saved with every checkpoint, so a
resumed run sees exactly the samples the interrupted one would have seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from omni.processor import EncodedSample, OmniBatch, OmniProcessor
from omni.sequence import Audio, Image, Sample, Turn, Video
from training.manifests import Manifest, media_paths

log = logging.getLogger(__name__)


# --- mixtures ----------------------------------------------------------------------------
class MixtureSampler:
    """An endless, deterministic stream of ``(source, index)`` over weighted sources.

    Draw ``k`` picks its source from ``Random((seed, k))`` by weight; each source walks its
    own per-epoch permutation. The whole state is two integers per source plus the position,
    plain JSON that checkpoints carry.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int = 0) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("a mixture needs one weight per source and at least one source")
        if any(n < 1 for n in sizes):
            raise ValueError(f"every mixture source needs samples; sizes are {list(sizes)}")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {weights}")
        self.sizes = list(sizes)
        self.weights = [w / sum(weights) for w in weights]
        self.seed = seed
        self.position = 0
        self.consumed = [0] * len(sizes)
        self._orders: dict[int, tuple[int, list[int]]] = {}  # source -> (epoch, its permutation)

    def _order(self, source: int, epoch: int) -> list[int]:
        """The permutation of ``source`` for ``epoch``; each source keeps its current one."""
        cached = self._orders.get(source)
        if cached is None or cached[0] != epoch:
            order = list(range(self.sizes[source]))
            random.Random(f"{self.seed}/{source}/{epoch}").shuffle(order)
            cached = self._orders[source] = (epoch, order)
        return cached[1]

    def __next__(self) -> tuple[int, int]:
        source = random.Random(f"{self.seed}/{self.position}").choices(
            range(len(self.sizes)), self.weights
        )[0]
        count = self.consumed[source]
        index = self._order(source, count // self.sizes[source])[count % self.sizes[source]]
        self.consumed[source] += 1
        self.position += 1
        return source, index

    def __iter__(self) -> MixtureSampler:
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "position": self.position, "consumed": list(self.consumed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["consumed"]) != len(self.sizes):
            raise ValueError("the saved sampler state is for a different number of sources")
        self.seed, self.position = int(state["seed"]), int(state["position"])
        self.consumed = [int(c) for c in state["consumed"]]


# --- discrete targets --------------------------------------------------------------------
def tokenizer_version(tokenizer: Any) -> str:
    """A short hash of a discrete tokenizer's config and weights: changes when they do."""
    if getattr(tokenizer, "version", None):
        return str(tokenizer.version)
    digest = hashlib.sha256(type(tokenizer).__qualname__.encode())
    if hasattr(tokenizer, "to_config"):
        digest.update(json.dumps(tokenizer.to_config(), sort_keys=True, default=str).encode())
    if hasattr(tokenizer, "state_dict"):
        for name, tensor in sorted(tokenizer.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _is_discrete(segment: Any, role: str) -> bool:
    mode = segment.mode or ("discrete" if role == "assistant" else "continuous")
    return mode in ("discrete", "both")


class CodeCache:
    """Discrete targets tokenised once: codes stored on disk under
    ``folder/<modality>/<sha256(file bytes)>-<tokenizer version>.safetensors``.

    ``fill(sample)`` returns a copy of the sample whose discrete image/audio segments carry
    ``codes``; segments that already have codes are left alone and never tokenised.
    """

    def __init__(self, folder: str | Path, tokenizers: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.tokenizers = dict(tokenizers)
        self.versions = {m: tokenizer_version(t) for m, t in self.tokenizers.items()}
        self.hits = self.misses = 0

    def codes(self, modality: str, path: str) -> torch.Tensor:
        from safetensors.torch import load_file, save_file

        if modality not in self.tokenizers:
            # Not about this file (so never skipped as a bad line): the run lacks a tokenizer.
            raise ValueError(
                f"discrete {modality} targets without codes need a tokenizer for {modality} "
                f"(name one under code_tokenizers; first such target: {Path(path).name})"
            )
        content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        entry = self.folder / modality / f"{content}-{self.versions[modality]}.safetensors"
        if entry.is_file():
            self.hits += 1
            return load_file(str(entry))["codes"]
        self.misses += 1
        codes = torch.as_tensor(self.tokenizers[modality].encode(path)).long().contiguous()
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_suffix(f".tmp{random.getrandbits(32)}")
        save_file({"codes": codes}, str(temporary))
        temporary.replace(entry)  # atomic: a concurrent reader sees all of it or nothing
        return codes

    def fill(self, sample: Sample) -> Sample:
        turns = []
        for turn in sample.turns:
            segments = []
            for segment in turn.segments:
                needs = (
                    isinstance(segment, (Image, Audio))
                    and segment.codes is None
                    and isinstance(segment.source, str)
                    and _is_discrete(segment, turn.role)
                )
                if needs:
                    modality = "image" if isinstance(segment, Image) else "audio"
                    segment = replace(segment, codes=self.codes(modality, segment.source))
                segments.append(segment)
            turns.append(replace(turn, segments=segments))
        return replace(sample, turns=turns)


def force_media_mode(sample: Sample, mode: str | None) -> Sample | None:
    """Every image/audio segment in ``mode`` (``discrete`` for the discrete-only stage);
    ``None`` when the sample cannot be expressed that way (a video has no codes)."""
    if mode is None:
        return sample
    turns = []
    for turn in sample.turns:
        if mode == "discrete" and any(isinstance(s, Video) for s in turn.segments):
            return None
        segments = [
            replace(s, mode=mode) if isinstance(s, (Image, Audio)) else s for s in turn.segments
        ]
        turns.append(Turn(turn.role, segments, turn.think, turn.loss))
    return replace(sample, turns=turns)


# --- packing -----------------------------------------------------------------------------
@dataclass
class DataSpec:
    """What a stage reads: weighted manifests and how samples become rows."""

    sources: list[Manifest]
    weights: list[float]
    row_length: int
    loss_on: str = "assistant"
    media_mode: str | None = None
    think: str = "keep"  # "keep" or "drop" the think blocks of assistant turns
    seed: int = 0
    lookahead: int = 64
    max_sample_length: int | None = None
    cache: CodeCache | None = None


class RowPacker:
    """Fills rows of ``row_length`` tokens from a mixture with a lookahead buffer.

    Each row takes the oldest buffered sample, then the longest buffered samples that still fit;
    the buffer is refilled from the sampler. The state (sampler state + the keys of buffered samples) is
    plain JSON; buffered samples are re-encoded on resume, so nothing binary is saved.
    """

    def __init__(self, spec: DataSpec, processor: OmniProcessor) -> None:
        self.spec = spec
        self.processor = processor
        self.sampler = MixtureSampler([len(s) for s in spec.sources], spec.weights, spec.seed)
        self.buffer: list[tuple[tuple[int, int], EncodedSample]] = []
        self.skipped: dict[str, int] = {}
        self.real_tokens = self.row_tokens = 0

    def _skip(self, key: tuple[int, int], reason: str) -> None:
        record = self.spec.sources[key[0]].records[key[1]]
        where = f"{self.spec.sources[key[0]].path}:{record.line}"
        if reason not in self.skipped:
            log.warning(
                "skipping %s: %s (further samples skipped for this reason are counted)",
                where,
                reason,
            )
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def encode(self, key: tuple[int, int]) -> EncodedSample | None:
        spec = self.spec
        sample = force_media_mode(spec.sources[key[0]][key[1]], spec.media_mode)
        if sample is None:
            self._skip(key, f"a video cannot enter as {spec.media_mode} tokens")
            return None
        if spec.think == "drop":
            sample = replace(sample, turns=[replace(t, think=None) for t in sample.turns])
        try:
            if spec.cache is not None:
                sample = spec.cache.fill(sample)
            encoded = self.processor.encode(sample, loss_on=spec.loss_on)
        except (ValueError, OSError) as error:
            # An error that names one of the sample's media files (unreadable, corrupt) is a
            # bad line; any other (a missing encoder, a bad config) stops the run.
            if not any(path in str(error) for path in media_paths(sample)):
                raise
            source = spec.sources[key[0]]
            source.reject(source.records[key[1]].line, str(error), error)
            return None
        limit = min(spec.row_length, spec.max_sample_length or spec.row_length)
        if len(encoded) > limit:
            self._skip(key, f"longer than {limit} tokens")
            return None
        return encoded

    def _refill(self) -> None:
        attempts = 0
        while len(self.buffer) < self.spec.lookahead:
            key = next(self.sampler)
            encoded = self.encode(key)
            attempts += 1
            if encoded is not None:
                self.buffer.append((key, encoded))
            elif attempts > 100 * self.spec.lookahead and not self.buffer:
                raise ValueError(f"no usable sample in this mixture: skipped {self.skipped}")

    def next_row(self) -> list[EncodedSample]:
        """The samples of one row, at most ``row_length`` tokens together: the oldest buffered
        sample first (none waits forever), then the longest ones that still fit (best fit)."""
        self._refill()
        room = self.spec.row_length
        chosen: list[int] = []
        for index in [
            0,
            *sorted(range(1, len(self.buffer)), key=lambda i: -len(self.buffer[i][1])),
        ]:
            if len(self.buffer[index][1]) <= room:
                chosen.append(index)
                room -= len(self.buffer[index][1])
        row = [self.buffer[i][1] for i in chosen]
        self.buffer = [item for i, item in enumerate(self.buffer) if i not in set(chosen)]
        self.real_tokens += self.spec.row_length - room
        self.row_tokens += self.spec.row_length
        return row

    def next_batch(self, rows: int) -> OmniBatch:
        """``rows`` packed rows: per-sample positions, no attention across samples."""
        return concat_rows(
            [self.processor.pack(self.next_row(), self.spec.row_length) for _ in range(rows)]
        )

    @property
    def packing_ratio(self) -> float:
        """Share of row tokens that are real tokens, over every row built so far."""
        return self.real_tokens / self.row_tokens if self.row_tokens else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "buffer": [list(key) for key, _ in self.buffer],
            "real_tokens": self.real_tokens,
            "row_tokens": self.row_tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.buffer = []
        for key in state["buffer"]:
            encoded = self.encode((int(key[0]), int(key[1])))
            if encoded is None:
                raise ValueError(f"the saved data state names an unusable sample {key}")
            self.buffer.append(((int(key[0]), int(key[1])), encoded))
        self.real_tokens, self.row_tokens = int(state["real_tokens"]), int(state["row_tokens"])


def concat_rows(batches: list[OmniBatch]) -> OmniBatch:
    """Stack packed single-row batches; media stay in row-major order, as the model reads."""
    media: dict[str, list[Any]] = {}
    for batch in batches:
        for modality, items in batch.media.items():
            media.setdefault(modality, []).extend(items)
    return OmniBatch(
        torch.cat([b.input_ids for b in batches]),
        torch.cat([b.labels for b in batches]),
        None,
        torch.cat([b.position_ids for b in batches]),
        media,
    )


def real_token_count(batch: OmniBatch, pad_id: int) -> int:
    return int((batch.input_ids != pad_id).sum())
