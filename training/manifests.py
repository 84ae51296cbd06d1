"""The samples of a JSONL manifest for training: each line read by ``omni.common.manifest``
(a record without ``split`` is in ``train``), rebuilt as a ``Sample`` and checked."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omni.common.manifest import IssueLog, ManifestIssue, read_records, record_split
from omni.sequence import Sample, Video


@dataclass
class Record:
    """One usable manifest line: the sample plus where it came from."""

    sample: Sample
    split: str
    line: int


def media_paths(sample: Sample) -> list[str]:
    """The media files a sample names (image, audio, video sources given as paths)."""
    paths: list[str] = []
    for turn in sample.turns:
        for segment in turn.segments:
            source = getattr(segment, "source", None)
            if isinstance(source, str):
                paths.append(source)
            elif isinstance(segment, Video) and isinstance(source, list):
                paths.extend(s for s in source if isinstance(s, str))
    return paths


def segment_kinds(sample: Sample) -> set[str]:
    """The segment kinds a sample holds (``text``, ``image``, ``audio``, ``video``)."""
    return {type(s).__name__.lower() for turn in sample.turns for s in turn.segments}


class Manifest:
    """The samples of one JSONL manifest (read by ``omni.common.manifest``: a record without a
    ``split`` is in ``train``), checked line by line.

    A line that is not JSON, has an unknown segment type or points at a missing media file is
    a :class:`ManifestIssue`, and so is a media file found corrupt when its sample is encoded
    (``reject``): logged once with file and line number and skipped (``on_error="skip"``), or
    a ``ValueError`` naming them (``on_error="raise"``). It is never dropped silently:
    ``issues`` lists them all. ``select`` gives the records of one split and task list
    without reading the file again, sharing the issues.
    """

    def __init__(
        self,
        path: str | Path,
        split: str | None = None,
        tasks: Sequence[str] | None = None,
        on_error: str = "skip",
    ) -> None:
        self.issue_log = IssueLog(on_error)
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"no manifest at {self.path}")
        self.records: list[Record] = []
        root = self.path.parent
        for number, data in read_records(self.path, self.issue_log):
            try:
                sample = Sample.from_dict(data, root=root)
                missing = [p for p in media_paths(sample) if not Path(p).is_file()]
                if missing:
                    raise ValueError(f"missing media file {missing[0]}")
            except (ValueError, TypeError, KeyError) as error:
                self.reject(number, str(error), error)
                continue
            self.records.append(Record(sample, record_split(data), number))
        self.records = self._matching(split, tasks)

    @property
    def issues(self) -> list[ManifestIssue]:
        return self.issue_log.issues

    def _matching(
        self, split: str | None, tasks: Sequence[str] | None, media: str | None = None
    ) -> list[Record]:
        return [
            r
            for r in self.records
            if (split is None or r.split == split)
            and (tasks is None or r.sample.task in tasks)
            and (media is None or media in segment_kinds(r.sample))
        ]

    def select(
        self,
        split: str | None = None,
        tasks: Sequence[str] | None = None,
        media: str | None = None,
    ) -> Manifest:
        """The records of ``split`` and ``tasks`` (None: all), and holding a ``media``
        segment (``image`` / ``audio`` / ``video``; None: any), as a manifest of their own."""
        view = copy.copy(self)
        view.records = self._matching(split, tasks, media)
        return view

    def reject(self, line: int, reason: str, cause: Exception | None = None) -> None:
        """Report line ``line`` unusable (once) and skip it, or raise (``on_error="raise"``)."""
        self.issue_log.report(ManifestIssue(self.path, line, reason), cause)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        return self.records[index].sample
