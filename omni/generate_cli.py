"""``omni generate``: answer inputs from the command line, writing text, a PNG or a WAV."""

from __future__ import annotations

import argparse
from pathlib import Path

from omni.cli_options import add_placement_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", action="append", required=True, help="text or a file path (repeatable)"
    )
    parser.add_argument(
        "--out-modality", default="text", choices=["text", "image", "audio", "auto"]
    )
    parser.add_argument("--output", help="file to write (PNG for images, WAV for audio, else text)")
    parser.add_argument("--model", help="a saved model folder (default: the shipped model)")
    add_placement_arguments(parser)
    parser.add_argument("--device-map", help="'auto': spread the LM over the GPUs (accelerate)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--voice", help="a voice name or a reference clip path")
    parser.add_argument("--steps", type=int, default=8, help="image sampling steps")
    parser.add_argument("--guidance", type=float, default=2.0, help="image guidance scale")
    parser.add_argument("--think", action="store_true")
    parser.add_argument("--no-speculative", action="store_true", help="plain decoding")


def check_output(output: str | None) -> Path | None:
    """The output file, checked before anything is generated: its folder must exist."""
    if output is None:
        return None
    path = Path(output)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {output}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot write {output}: it is a folder; name a file to write")
    return path


def run(args: argparse.Namespace) -> int:
    import soundfile

    import omni

    options = dict(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
        voice=args.voice,
        think=args.think,
    )
    if args.out_modality in ("image", "auto"):
        options.update(steps=args.steps, guidance=args.guidance)
    if args.no_speculative:
        options["speculative"] = False
    output = check_output(args.output)
    pipe = omni.load(args.model, device=args.device, dtype=args.dtype, device_map=args.device_map)
    inputs = args.input if len(args.input) > 1 else args.input[0]
    result = pipe.generate(inputs, args.out_modality, **options)
    if args.out_modality == "image" and output is not None:
        result.image.save(output)
    elif args.out_modality == "audio" and output is not None:
        rate, samples = result.audio
        soundfile.write(output, samples, rate)
    elif output is not None:
        output.write_text(result.text + "\n", encoding="utf-8")
    if result.text:
        print(result.text)
    if output is not None:
        print(f"wrote {output}")
    return 0
