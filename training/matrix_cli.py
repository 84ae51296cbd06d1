"""``omni eval matrix --model PATH --data MANIFEST --split test|novel|unseen|novel-tool``: the
any-to-any matrix (``training.matrix``) as ``matrix.md`` + ``matrix.json``, with a PNG grid of
the drawn scenes and a few WAVs of the spoken answers beside them. A toy-world manifest gets
the toy world's directions, an ``omni data agentic`` one the tool and safety directions."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="pipeline folder (default: the shipped one)")
    parser.add_argument("--data", required=True, help="toy-world or agentic manifest.jsonl")
    parser.add_argument("--split", default="test", help="test, novel, unseen or novel-tool")
    parser.add_argument("--n", type=int, default=50, help="samples per direction")
    parser.add_argument("--out", required=True, help="folder for the report")
    parser.add_argument("--directions", nargs="*", default=None, help="a subset (default: all)")
    parser.add_argument("--wavs", type=int, default=3, help="spoken answers kept as WAV files")
    parser.add_argument(
        "--speedup", action="store_true", help="time plain decoding too (speculative speed-up)"
    )


def _keeper(out, wavs: int):
    """Collects drawn images and the first spoken answers as the run goes."""
    import soundfile

    drawn = []

    def keep(direction, record, result) -> None:
        if direction.name == "draw" and result.image is not None:
            drawn.append(result.image)
        kept = len(list(out.glob("*.wav")))
        if direction.out_modality == "audio" and result.audio is not None and kept < wavs:
            rate, wave = result.audio
            soundfile.write(out / f"{direction.name}-{record['id']}.wav", wave, rate)

    return keep, drawn


def _grid(images, path) -> None:
    from PIL import Image

    side = images[0].size[0]
    columns = min(8, len(images))
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * side, rows * side), (255, 255, 255))
    for index, image in enumerate(images):
        grid.paste(
            image.resize((side, side)), ((index % columns) * side, (index // columns) * side)
        )
    grid.save(path)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import omni
    from training.matrix import (
        direction_families,
        directions_for,
        read_split,
        run_matrix,
        write_report,
    )

    every = [d for family in direction_families().values() for d in family]
    names = [d.name for d in every]
    unknown = sorted(set(args.directions or []) - set(names))
    if unknown:
        raise ValueError(f"unknown directions {unknown}; the matrix has {names}")
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    records = read_split(args.data, args.split)
    if args.directions:
        directions = tuple(d for d in every if d.name in args.directions)
    else:
        directions = directions_for(records)
    pipeline = omni.load(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keep, drawn = _keeper(out, args.wavs)
    reports = run_matrix(
        pipeline, records, args.n, directions, on_answer=keep, compare_plain=args.speedup
    )
    if drawn:
        _grid(drawn, out / "draw-grid.png")
    paths = write_report(reports, out, str(args.model or "default model"), args.split)
    print(paths["markdown"].read_text(encoding="utf-8"))
    return 0
