"""The one reader of sample manifests (``manifest.jsonl``: one JSON record of turns of
segments per line, as ``omni data toyworld`` writes them), for every trainer.

The split rule, everywhere: a record's split is its ``split`` field, and a record without one
is in ``train``. A line that is not a JSON object is a :class:`ManifestIssue` (file and
1-based line number): reported once and skipped, or raised as a ``ValueError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
ON_ERROR = ("skip", "raise")
DEFAULT_SPLIT = "train"


@dataclass(frozen=True)
class ManifestIssue:
    """A manifest line that was not used, and why (file and 1-based line number)."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def record_split(record: dict[str, Any]) -> str:
    """The split a record belongs to (``train`` when it names none)."""
    return record.get("split", DEFAULT_SPLIT)


def manifest_path(item: str | Path) -> Path:
    """A ``.jsonl`` file, or a folder holding ``manifest.jsonl``; a ValueError otherwise."""
    path = Path(item)
    if path.is_dir():
        path = path / "manifest.jsonl"
    if not path.is_file():
        raise ValueError(f"no manifest at {path}; write one with `omni data toyworld`")
    return path


class IssueLog:
    """The issues of one manifest: each reported once (logged, or raised with
    ``on_error="raise"``), however many readers or epochs come across it."""

    def __init__(self, on_error: str = "skip") -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.issues: list[ManifestIssue] = []

    def report(self, issue: ManifestIssue, cause: Exception | None = None) -> None:
        if self.on_error == "raise":
            raise ValueError(str(issue)) from cause
        if issue not in self.issues:
            log.warning("skipping manifest line %s", issue)
            self.issues.append(issue)


def read_records(path: str | Path, issues: IssueLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of every JSON-object line of ``path``; other lines go to
    ``issues``."""
    path = Path(path)
    with path.open(encoding="utf-8") as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError(f"a record is a JSON object, got {type(record).__name__}")
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                issues.report(ManifestIssue(path, number, f"not a JSON record: {error}"), error)
                continue
            yield number, record


def split_records(
    item: str | Path, splits: tuple[str, ...] | None = None, on_error: str = "raise"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of the records of ``splits`` (all when None) in the manifest
    ``item`` names (see ``manifest_path``)."""
    for number, record in read_records(manifest_path(item), IssueLog(on_error)):
        if splits is None or record_split(record) in splits:
            yield number, record


def media_segments(
    item: str | Path,
    kind: str,
    splits: tuple[str, ...] = (DEFAULT_SPLIT,),
    distinct: bool = True,
) -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """``(file path, segment, record)`` of every ``kind`` ("image" / "audio") segment with a
    ``path`` in the records of ``splits``, in manifest order; with ``distinct``, each file once
    (its first record). A ValueError when there is none."""
    root = manifest_path(item).parent
    found: list[tuple[Path, dict[str, Any], dict[str, Any]]] = []
    for _, record in split_records(item, splits):
        for turn in record.get("turns", []):
            for segment in turn.get("segments", []):
                if segment.get("type") == kind and "path" in segment:
                    found.append((root / segment["path"], segment, record))
    if distinct:
        firsts: dict[Path, tuple[Path, dict[str, Any], dict[str, Any]]] = {}
        for entry in found:
            firsts.setdefault(entry[0], entry)
        found = list(firsts.values())
    if not found:
        raise ValueError(f"no {kind} segments in the {'/'.join(splits)} split(s) of {item}")
    return found
