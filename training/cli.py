"""``omni train lm``: run one curriculum stage, or all of them in order.

Each stage writes ``OUT/<stage>/`` (``checkpoints/``, ``metrics.csv``, ``tensorboard/``) and
its trained model to ``OUT/<stage>/final`` (``save_pretrained`` + the text tokenizer), which
the next stage starts from. With ``--decoders`` (and ``--tokenizers``), each ``final`` is a
complete pipeline folder (``training.assemble``) that ``omni.load`` loads. A model built from a
preset has its vocabulary sized from the ``--tokenizers`` it is given. Launch under ``torchrun --nproc_per_node N`` for data parallelism (DDP, or FSDP2 sharding
with ``--fsdp``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="curriculum YAML (or one stage's YAML)")
    parser.add_argument("--stage", default="all", help="stage name or prefix (sft-2), or 'all'")
    parser.add_argument("--init", default=None, help="Omni checkpoint folder to start from")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument(
        "--data", nargs="*", default=[], metavar="NAME=PATH", help="manifest paths by name"
    )
    parser.add_argument(
        "--tokenizers",
        nargs="*",
        default=[],
        metavar="MODALITY=FOLDER",
        help="saved discrete tokenizers (image=..., audio=...) for targets without codes",
    )
    parser.add_argument(
        "--decoders",
        nargs="*",
        default=[],
        metavar="MODALITY=FOLDER",
        help="saved decoders (image=..., audio=...) assembled with each stage's final model",
    )
    parser.add_argument("--steps", type=int, default=None, help="override every stage's steps")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--fsdp", action="store_true", help="shard with FSDP2 (under torchrun)")
    parser.add_argument(
        "--on-error",
        choices=("skip", "raise"),
        default="skip",
        help="bad manifest lines: report and skip, or stop",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def run(args: argparse.Namespace) -> int:
    import logging

    import torch

    from omni.chat_template import attach_chat_template
    from omni.processor import OmniProcessor
    from training.assemble import assemble_pipeline
    from training.cli_args import pairs
    from training.curation import balance_by_difficulty
    from training.curriculum import Curriculum, apply_rope_scaling
    from training.data import CodeCache
    from training.models import load_code_tokenizers, load_model
    from training.trainer import TrainOptions, save_model, setup_distributed, train_stage

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    curriculum = Curriculum.load(args.recipe, pairs(args.data, "--data"))
    curriculum.code_tokenizers.update(pairs(args.tokenizers, "--tokenizers"))
    stages = curriculum.select(args.stage)
    env = setup_distributed()
    out = Path(args.out)
    tokenizers = load_code_tokenizers(curriculum.code_tokenizers)
    decoders = pairs(args.decoders, "--decoders")
    cache = CodeCache(out / "code-cache", tokenizers)
    options = TrainOptions(
        resume=args.resume,
        bf16=args.bf16,
        fsdp=args.fsdp,
        progress=not args.no_progress,
        on_error=args.on_error,
    )
    init = args.init
    for recipe in stages:
        if args.steps is not None:
            recipe.steps = args.steps
        final = out / recipe.name / "final"
        if args.resume and (final / "config.json").is_file():
            init = str(final)  # finished before the interruption
            continue
        model, tokenizer = load_model(init, curriculum.model, tokenizers)
        torch.manual_seed(recipe.seed)
        if recipe.rope is not None:
            apply_rope_scaling(model, recipe.rope)
        processor = OmniProcessor.from_model(model, tokenizer)
        manifests = balance_by_difficulty(recipe, curriculum.manifests, model, processor)
        train_stage(model, processor, recipe, manifests, out / recipe.name, options, cache, env)
        save_model(model, final, env)  # collective under FSDP2 (gathers the full weights)
        if env.main:
            attach_chat_template(tokenizer, model.layout).save_pretrained(final)
            if decoders:
                assemble_pipeline(final, final, curriculum.code_tokenizers, decoders)
        if env.world_size > 1:
            torch.distributed.barrier()
        init = str(final)
    if env.world_size > 1:
        torch.distributed.destroy_process_group()
    return 0
