"""The snapshot store through which the SnapPO stages talk (generate -> reward -> train).

Every artefact is a folder ``<root>/<kind>/<key>/`` holding ``record.json`` (plain data) and,
where there are tensors, ``tensors.safetensors``; media a stage writes (a drawn image, a
spoken answer) sit beside them. The key is the content hash of everything the stage that made
the artefact read: its input artefacts' keys and its settings. So a stage whose inputs did
not change finds its output already there and does nothing, and any stage can be re-run alone.

A folder appears only complete: a stage writes into a hidden temporary folder and renames it
into place, so a stage killed midway leaves no half-artefact behind to be mistaken for done;
what it may leave is its resumable progress (``progress_folder``), which the next run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

KINDS = ("policies", "rollouts", "rewards")


def content_hash(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, no whitespace): equal data, equal
    key, whatever the dict order. Tensors must be reduced first, e.g. by ``tensor_digest``."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


@dataclass
class Snapshot:
    """One artefact read back: its record, its tensors and its folder (for media files)."""

    kind: str
    key: str
    record: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    folder: Path | None = None


class SnapshotStore:
    """Artefacts on disk under ``root``, addressed by (kind, key)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _check(self, kind: str, key: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown snapshot kind {kind!r}; expected one of {KINDS}")
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"snapshot key {key!r} is not a hex content hash")

    def folder(self, kind: str, key: str) -> Path:
        self._check(kind, key)
        return self.root / kind / key

    def progress_folder(self, kind: str, key: str) -> Path:
        """Where a stage making (kind, key) keeps its resumable progress (checkpoints): a
        hidden folder beside the artefact's, never read as one, removed once it is published."""
        self._check(kind, key)
        return self.root / kind / f".{key}.progress"

    def exists(self, kind: str, key: str) -> bool:
        return self.folder(kind, key).is_dir()

    def write(
        self,
        kind: str,
        key: str,
        record: dict[str, Any],
        tensors: dict[str, torch.Tensor] | None = None,
        media: dict[str, bytes] | None = None,
    ) -> Path:
        """Write an artefact atomically; ``media`` maps file names to their bytes."""
        for name in media or {}:
            if Path(name).name != name or name in ("record.json", "tensors.safetensors"):
                raise ValueError(f"media file name {name!r} must be a plain, unreserved file name")

        def fill(folder: Path) -> None:
            if tensors:
                plain = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
                save_file(plain, folder / "tensors.safetensors")
            for name, data in (media or {}).items():
                (folder / name).write_bytes(data)

        return self.publish(kind, key, record, fill)

    def publish(
        self, kind: str, key: str, record: dict[str, Any], fill: Callable[[Path], None]
    ) -> Path:
        """Let ``fill`` write files into a hidden folder, add ``record.json``, then rename the
        folder into place: the artefact appears whole or not at all."""
        final = self.folder(kind, key)
        staging = final.parent / f".{key}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            fill(staging)
            (staging / "record.json").write_text(json.dumps(record, indent=1, ensure_ascii=False))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            staging.rename(final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not final.is_dir():
                raise
            # else another run wrote the same key first: same inputs, same artefact
        return final

    def read(self, kind: str, key: str) -> Snapshot:
        folder = self.folder(kind, key)
        if not folder.is_dir():
            raise ValueError(f"no {kind} snapshot {key} under {self.root}; run its stage first")
        record = json.loads((folder / "record.json").read_text())
        weights = folder / "tensors.safetensors"
        tensors = load_file(weights) if weights.exists() else {}
        return Snapshot(kind, key, record, tensors, folder)
