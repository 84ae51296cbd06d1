"""The any-to-any matrix: every direction of the toy world, answered by a pipeline and judged
by the world's checkers (``training.matrix_scores``), with 95% intervals, seconds per answer
and MTP acceptance; on agentic data, the tool and safety directions
(``training.matrix_agentic``). ``omni eval matrix`` writes ``matrix.md`` and ``matrix.json``."""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from training.decoder_metrics import wilson_interval
from training.matrix_scores import DIRECTIONS, METRIC_KINDS, METRIC_UPPER, Direction, ScoreContext

MATRIX_SPLITS = ("test", "novel", "unseen", "novel-tool")


def direction_families() -> dict[str, tuple[Direction, ...]]:
    """The matrix's directions by the data they read: the toy world's, and the agentic ones."""
    from training.matrix_agentic import AGENTIC_DIRECTIONS

    return {"toyworld": DIRECTIONS, "agentic": AGENTIC_DIRECTIONS}


def directions_for(records: list[dict[str, Any]]) -> tuple[Direction, ...]:
    """Every direction of each family that has a record among ``records``, in order."""
    chosen: tuple[Direction, ...] = ()
    for family in direction_families().values():
        if any(d.select(r) for d in family for r in records):
            chosen += family
    return chosen


def read_split(manifest: str | Path, split: str) -> list[dict[str, Any]]:
    """The manifest's records of ``split``, with media paths made absolute."""
    from omni.common.manifest import IssueLog, read_records, record_split

    if split not in MATRIX_SPLITS:
        raise ValueError(f"--split must be one of {MATRIX_SPLITS}, got {split!r}")
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ValueError(f"no manifest at {manifest}")
    records = [r for _, r in read_records(manifest, IssueLog("skip")) if record_split(r) == split]
    if not records:
        raise ValueError(f"{manifest} has no {split!r} samples")
    for record in records:
        for turn in record["turns"]:
            for segment in turn["segments"]:
                if "path" in segment:
                    segment["path"] = str(manifest.parent / segment["path"])
    return records


def interval(values: list[float], kind: str, upper: float = 1.0) -> tuple[float, float, float]:
    """(mean, low, high): Wilson for shares, else mean +- 1.96 standard errors, clipped to the
    metric's range [0, upper]."""
    mean = sum(values) / len(values)
    if kind == "share":
        return (mean, *wilson_interval(mean, len(values)))
    spread = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, max(0.0, mean - spread), min(upper, mean + spread)


def summarise(
    direction: str,
    rows: list[dict[str, float]],
    seconds: list[float],
    usage: list[dict],
    plain_seconds: list[float] | None = None,
) -> dict[str, Any]:
    """One direction's report: n, each metric with its interval, seconds and MTP figures
    (the speculative speed-up when plain decoding was timed too)."""
    report: dict[str, Any] = {"direction": direction, "n": len(rows), "metrics": {}}
    for metric in sorted({m for row in rows for m in row}):
        values = [row[metric] for row in rows if metric in row]
        mean, low, high = interval(values, METRIC_KINDS[metric], METRIC_UPPER.get(metric, 1.0))
        report["metrics"][metric] = {"value": mean, "low": low, "high": high}
    report["seconds_per_answer"] = statistics.median(seconds) if seconds else None
    rates = [u["acceptance_rate"] for u in usage if u.get("acceptance_rate") is not None]
    report["mtp_acceptance"] = sum(rates) / len(rates) if rates else None
    report["speculative_speedup"] = None
    if plain_seconds and seconds:
        report["speculative_speedup"] = statistics.median(plain_seconds) / statistics.median(
            seconds
        )
    return report


def prompt_of(record: dict[str, Any]):
    from omni.sequence import Sample

    sample = Sample.from_dict(record)
    sample.turns = sample.turns[:-1]  # everything up to the assistant's answer
    return sample


def answer(pipeline: Any, direction: Direction, record: dict, options: dict) -> tuple[Any, float]:
    """The pipeline's answer to one record, and the seconds it took (decoding included)."""
    began = time.perf_counter()
    if direction.run is not None:
        result = direction.run(pipeline, record, options)
    else:
        result = pipeline.generate(
            prompt_of(record), out_modality=direction.out_modality, **options
        )
    return result, time.perf_counter() - began


def tts_candidates(records: list[dict]) -> dict[str, list[str]]:
    """The sentences TTS samples say, by language: the checker's candidates."""
    candidates: dict[str, list[str]] = {}
    for record in records:
        if record.get("task") == "tts":
            candidates.setdefault(record["meta"]["lang"], []).append(record["meta"]["text"])
    return {lang: sorted(set(texts)) for lang, texts in candidates.items()}


def run_matrix(
    pipeline: Any,
    records: list[dict],
    n: int,
    directions: tuple[Direction, ...] = DIRECTIONS,
    options: dict | None = None,
    on_answer: Any = None,
    compare_plain: bool = False,
) -> list[dict[str, Any]]:
    """Answer up to ``n`` records of each direction and judge them; one report per direction
    (a direction without records reports ``n = 0``). ``on_answer(direction, record, result)``
    sees every answer (the command keeps drawn scenes and speech from it). ``compare_plain``
    answers speculatively (whatever the model's default) and times every answer again without
    speculative decoding, for the speed-up."""
    from omni.decoding import supports_speculation

    options = {"seed": 0, **(options or {})}
    if compare_plain:
        if not supports_speculation(pipeline.model):
            raise ValueError(
                "the speculative speed-up (--speedup) needs a model with an MTP module"
            )
        options["speculative"] = True
    probe = getattr(pipeline.model, "code_tokenizers", {}).get("audio")
    context = ScoreContext(tts_candidates(records), probe if hasattr(probe, "transcribe") else None)
    reports = []
    for direction in directions:
        chosen = [r for r in records if direction.select(r)][:n]
        rows, seconds, usage, plain = [], [], [], []
        for record in chosen:
            result, took = answer(pipeline, direction, record, options)
            if compare_plain:
                plain.append(
                    answer(pipeline, direction, record, {**options, "speculative": False})[1]
                )
            rows.append(direction.score(record, result, context))
            if on_answer is not None:
                on_answer(direction, record, result)
            seconds.append(took)
            usage.append(result.usage)
        reports.append(summarise(direction.name, rows, seconds, usage, plain))
    return reports


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(metric: dict[str, float]) -> str:
    return f"{metric['value']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"


def markdown_table(reports: list[dict[str, Any]], title: str) -> str:
    """The matrix as a Markdown table: one line per direction and metric."""
    header = (
        "| direction | n | metric | value [95% interval] | s / answer | MTP acceptance | speed-up |"
    )
    lines = [f"### {title}", "", header, "| --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for report in reports:
        figures = [
            _number(report["seconds_per_answer"]),
            _number(report["mtp_acceptance"]),
            _number(report["speculative_speedup"]),
        ]
        for metric, value in (report["metrics"] or {"-": None}).items():
            cell = "-" if value is None else _cell(value)
            row = [report["direction"], str(report["n"]), metric, cell, *figures]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_report(reports: list[dict], out: str | Path, model: str, split: str) -> dict[str, Path]:
    """``matrix.json`` and ``matrix.md`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "matrix.json", "markdown": out / "matrix.md"}
    data = {"model": model, "split": split, "directions": reports}
    paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["markdown"].write_text(
        markdown_table(reports, f"{model}, split {split}"), encoding="utf-8"
    )
    return paths
