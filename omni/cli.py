"""The ``omni`` command. Each subcommand lives beside the code it drives and is imported
only when used, so ``omni params`` never loads gradio and ``omni demo`` never loads trainers.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int | None``; it
imports heavy libraries inside ``run`` only, because building the parser imports every one.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# (command path, module, help). Nested paths ("train", "vocoder") become sub-subcommands.
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("params",), "omni.params_cli", "count total and active parameters of a named config"),
    (("build",), "omni.build_cli", "build an Omni pipeline folder over a pretrained causal LM"),
    (("convert", "hcx-omni"), "omni.convert_cli", "import the official HyperCLOVA X Omni 8B"),
    (("data", "toyworld"), "training.toyworld.cli", "write the synthetic bilingual world"),
    (("data", "agentic"), "training.agentic.cli", "write tool-use episodes and safety prompts"),
    (
        ("train", "tokenizer"),
        "tokenizers_mm.cli",
        "train an image/speech/encodec/bpe/superbpe tokenizer",
    ),
    (
        ("train", "vision-encoder"),
        "training.vision_encoder_cli",
        "pretrain the micro ViT on the toy world",
    ),
    (
        ("train", "image-invariance"),
        "training.image_invariance_cli",
        "tune the image tokenizer to read other drawing styles with the same codes",
    ),
    (
        ("train", "speech-invariance"),
        "training.speech_invariance_cli",
        "tune the speech tokenizer to hear other voices and rooms with the same units",
    ),
    (("train", "image-decoder"), "training.image_decoder_cli", "train the diffusion image decoder"),
    (("train", "vocoder"), "training.vocoder_cli", "train the Unit-BigVGAN vocoder"),
    (("train", "lm"), "training.cli", "run curriculum stages of an Omni model"),
    (
        ("train", "default"),
        "training.default_cli",
        "train every component and the LM curriculum, then assemble the pipeline",
    ),
    (("pipeline",), "training.pipeline_cli", "assemble an LM with tokenizers and decoders"),
    (("eval", "niah"), "training.niah", "needle-in-a-haystack over lengths x depths"),
    (("eval", "matrix"), "training.matrix_cli", "the any-to-any matrix, judged by the checkers"),
    (("eval", "lm-eval"), "training.lm_eval_cli", "text directions through lm-evaluation-harness"),
    (("rl",), "training.post.rl_cli", "SnapPO RL stages: init, generate, reward, train, loop"),
    (("pref",), "training.post.pref_cli", "preference stages (DPO, SimPER, GrouPER), as rl"),
    (("generate",), "omni.generate_cli", "generate text, an image or audio from inputs"),
    (
        ("bench", "generate"),
        "training.bench_generate_cli",
        "benchmark speculative vs plain decoding",
    ),
    (("demo",), "app.cli", "start the Gradio demo"),
]


def _available(module: str) -> bool:
    """A subcommand shows up once the module that implements it exists."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omni", description="Omni: any-to-any multimodal kit")
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {
        (): parser.add_subparsers(dest="command", required=True)
    }
    for path, module, help_text in COMMANDS:
        if not _available(module):
            continue
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                group = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = group.add_subparsers(dest=f"command_{depth}", required=True)
        sub = groups[path[:-1]].add_parser(path[-1], help=help_text, description=help_text)
        sub.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = importlib.import_module(args._module).run(args)
    except ValueError as error:
        print(f"omni: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
