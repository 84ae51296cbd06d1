"""The SnapPO stage commands that ``omni rl`` (``rl_cli``) and ``omni pref`` (``pref_cli``)
share: init, generate, reward, train and loop over a snapshot store.

Every command prints one JSON object (the keys it made or found, whether it computed them,
its figures), so stages can be scripted and re-run alone; the two commands differ only in their losses.

Prompts come from a JSONL file, one object per prompt: ``{"text": ..., "meta": {...}}``
(rendered with the policy's chat template when its tokenizer has one) or ``{"ids": [...],
"meta": ...}``, sampled with transformers' ``generate`` (text answers); or from an Omni
manifest (``--manifest --task --split``): each sample's chat before its answer, media
included, sampled by the policy folder's Omni pipeline in the answer's modality (text, image
or speech, decoded for the checkers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

# The stages (torch, transformers) are imported when a command runs: `omni --help` builds
# every command's parser, and should not load a deep-learning stack to do it.


def parse_reward_spec(items: list[str]) -> dict[str, float]:
    """["exact_match", "format=0.1"] -> {"exact_match": 1.0, "format": 0.1}."""
    weights = {}
    for item in items:
        name, _, weight = item.partition("=")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"--reward {item!r}: the weight after '=' must be a number") from None
    return weights


def _add_generate_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", help="JSONL: {text|ids, meta} per line (text answers)")
    source.add_argument("--manifest", help="an Omni manifest: sampled by the Omni pipeline")
    parser.add_argument("--task", help="with --manifest: the task whose samples are prompts")
    parser.add_argument("--split", default="novel", help="with --manifest: the split")
    parser.add_argument("--limit", type=int, help="with --manifest: at most this many prompts")
    parser.add_argument("--group-size", type=int, default=8, help="responses per prompt (G)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)


def _add_train_options(parser: argparse.ArgumentParser, losses: tuple[str, ...]) -> None:
    parser.add_argument("--loss", choices=losses, default=losses[0])
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--epochs", type=int, default=1, help="passes over each rollout")
    parser.add_argument("--micro-batch", type=int, default=8, help="units per optimizer step")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--beta", type=float, default=0.1, help="DPO's beta")
    parser.add_argument("--nll-weight", type=float, default=0.0, help="DPO's NLL on the winner")
    parser.add_argument("--correct-threshold", type=float, default=0.5)
    parser.add_argument(
        "--clip-range",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="the ratio's clipping for grpo and gspo (default: GRPO 0.2 0.2, GSPO 3e-4 4e-4)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        help="optimizer steps between resumable checkpoints of the train stage (0: none midway)",
    )


def add_stage_commands(parser: argparse.ArgumentParser, losses: tuple[str, ...]) -> None:
    """The subcommands, shared by ``omni rl`` and ``omni pref`` (which differ in ``losses``)."""
    parser.add_argument("--store", required=True, help="snapshot folder shared by the stages")
    commands = parser.add_subparsers(dest="stage", required=True)
    init = commands.add_parser("init", help="store a saved model folder as a policy snapshot")
    init.add_argument("--model", required=True, help="a save_pretrained folder")
    generate = commands.add_parser("generate", help="sample G responses per prompt")
    generate.add_argument("--policy", required=True)
    _add_generate_options(generate)
    reward = commands.add_parser("reward", help="score a rollout (cached)")
    reward.add_argument("--rollout", required=True)
    reward.add_argument("--reward", nargs="+", required=True, help="name or name=weight")
    train = commands.add_parser("train", help="update the policy on a scored rollout")
    for name in ("--policy", "--rollout", "--rewards"):
        train.add_argument(name, required=True)
    _add_train_options(train, losses)
    loop = commands.add_parser("loop", help="rounds of generate -> reward -> train")
    loop.add_argument("--policy", required=True)
    loop.add_argument("--reward", nargs="+", required=True, help="name or name=weight")
    loop.add_argument("--rounds", type=int, default=1)
    loop.add_argument(
        "--prompts-per-round",
        type=int,
        help="each round samples the next N prompts (wrapping around); default: all of them",
    )
    _add_generate_options(loop)
    _add_train_options(loop, losses)


def read_prompts(path: str | Path, tokenizer) -> list:
    """The prompts of a JSONL file as ``generate_stage.Prompt`` objects."""
    from training.post.generate_stage import Prompt

    prompts = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        if "ids" in item:
            ids = [int(i) for i in item["ids"]]
        elif "text" in item and tokenizer.chat_template:
            chat = [{"role": "user", "content": item["text"]}]
            ids = list(
                tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
            )
        elif "text" in item:
            ids = tokenizer(item["text"]).input_ids
        else:
            raise ValueError(f"{path} line {number}: a prompt needs 'text' or 'ids'")
        prompts.append(Prompt(ids, item.get("meta", {})))
    return prompts


def _omni_sampler_and_prompts(store, args: argparse.Namespace):
    from transformers import AutoTokenizer

    from training.post.manifest_prompts import manifest_chats
    from training.post.omni_policy import omni_prompt, omni_sampler
    from training.post.policy import load_policy

    if not args.task:
        raise ValueError("--manifest needs --task: which task's samples are the prompts")
    chats, modality = manifest_chats(args.manifest, args.task, args.split, args.limit)
    model = load_policy(store, args.policy)
    tokenizer = AutoTokenizer.from_pretrained(store.folder("policies", args.policy))
    prompts = [omni_prompt(model, tokenizer, messages, meta) for messages, meta in chats]
    return omni_sampler(modality, args.max_new_tokens, args.temperature), prompts


def _sampler_and_prompts(store, args: argparse.Namespace):
    if args.manifest:
        return _omni_sampler_and_prompts(store, args)
    from transformers import AutoTokenizer

    from training.post.generate_stage import causal_lm_sampler

    tokenizer = AutoTokenizer.from_pretrained(store.folder("policies", args.policy))
    if tokenizer.eos_token_id is None:
        raise ValueError(f"policy {args.policy}'s tokenizer has no eos token to end answers")
    sampler = causal_lm_sampler(
        lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
        args.max_new_tokens,
        tokenizer.eos_token_id,
        args.temperature,
    )
    return sampler, read_prompts(args.prompts, tokenizer)


def _train_settings(args: argparse.Namespace):
    from training.post.train_stage import TrainSettings

    return TrainSettings(
        loss=args.loss,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        micro_batch=args.micro_batch,
        seed=args.train_seed,
        beta=args.beta,
        nll_weight=args.nll_weight,
        correct_threshold=args.correct_threshold,
        clip_range=tuple(args.clip_range) if args.clip_range else None,
    )


def run_stage(args: argparse.Namespace) -> dict:
    """Run the chosen stage; returns what the command prints."""
    from transformers import AutoModelForCausalLM

    from training.post.generate_stage import GenerateSettings, run_generate_stage
    from training.post.loop import run_loop
    from training.post.policy import save_policy
    from training.post.reward_stage import run_reward_stage
    from training.post.snapshots import SnapshotStore
    from training.post.train_stage import run_train_stage

    store = SnapshotStore(args.store)
    if args.stage == "init":
        model = AutoModelForCausalLM.from_pretrained(args.model)
        return {"policy": save_policy(store, model, source=args.model)}
    if args.stage == "reward":
        result = run_reward_stage(store, args.rollout, parse_reward_spec(args.reward))
        return dataclasses.asdict(result)
    if args.stage == "train":
        settings = _train_settings(args)
        keys = (args.policy, args.rollout, args.rewards)
        result = run_train_stage(store, *keys, settings, args.checkpoint_every)
        return dataclasses.asdict(result)
    if args.stage == "loop":  # its settings are checked before the policy loads
        weights, train = parse_reward_spec(args.reward), _train_settings(args)
    sampler, prompts = _sampler_and_prompts(store, args)
    generate = GenerateSettings(args.group_size, args.seed)
    if args.stage == "generate":
        result = run_generate_stage(store, args.policy, prompts, sampler, generate)
        return dataclasses.asdict(result)
    rounds = run_loop(
        store,
        args.policy,
        prompts,
        sampler,
        weights,
        args.rounds,
        generate,
        train,
        args.checkpoint_every,
        args.prompts_per_round,
    )
    return {"rounds": [dataclasses.asdict(r) for r in rounds]}


def run(args: argparse.Namespace) -> int:
    print(json.dumps(run_stage(args), indent=1))
    return 0
