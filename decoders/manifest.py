"""Media of a sample manifest (``manifest.jsonl``: records of turns of segments, as written by
``omni data toyworld``), for the decoder trainers: which images / voiced clips to learn from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def manifest_segments(
    folder: str | Path, kind: str, splits: tuple[str, ...] = ("train",)
) -> list[tuple[Path, dict[str, Any]]]:
    """``(file path, segment)`` of every distinct ``kind`` ("image" / "audio") segment in the
    records of the given splits, in manifest order."""
    manifest = Path(folder) / "manifest.jsonl"
    if not manifest.is_file():
        raise ValueError(f"{folder} has no manifest.jsonl; write one with `omni data toyworld`")
    found: dict[Path, dict[str, Any]] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("split") not in splits:
            continue
        for turn in record["turns"]:
            for segment in turn["segments"]:
                if segment.get("type") == kind and "path" in segment:
                    found.setdefault(Path(folder) / segment["path"], segment)
    if not found:
        raise ValueError(f"no {kind} segments in the {'/'.join(splits)} split(s) of {manifest}")
    return list(found.items())
