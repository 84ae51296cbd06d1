"""``omni demo``: start the Gradio demo on the shipped model or on ``--model PATH``."""

from __future__ import annotations

import argparse
import os

from omni.cli_options import add_placement_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="a saved Omni model folder (default: the shipped model)")
    add_placement_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 serves the network")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="chat turns the model streams at once (each uses the CPU cores torch is given)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="/generate requests that arrive together are answered in one batch of at most this",
    )


def run(args: argparse.Namespace) -> int:
    # Nothing is reachable at run time; gradio must not try to phone home.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import omni
    from app.demo import build_demo, launch

    if args.concurrency < 1 or args.max_batch < 1:
        raise ValueError(
            f"--concurrency and --max-batch must be at least 1, got {args.concurrency} and "
            f"{args.max_batch}"
        )
    try:
        pipe = omni.load(args.model, device=args.device, dtype=args.dtype)
    except ValueError as error:
        if args.model is None:
            raise ValueError(f"{error}. Start the demo on one: omni demo --model PATH") from error
        raise
    name = args.model or "default model"
    demo = build_demo(pipe, name, max_batch=args.max_batch)
    launch(demo, args.host, args.port, args.share, args.concurrency)
    return 0
