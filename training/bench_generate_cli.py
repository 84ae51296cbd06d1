"""``omni bench generate``: MTP self-speculative vs plain decoding, and streaming latency.

Both decoders run on the same model, prompts and process, so the figures are ratios. Without
``--model`` a micro model is first trained briefly (LM + MTP loss) on the synthetic world's
English -> Korean caption translation, so its MTP head has learned something to draft with.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="a saved model folder (default: train a micro model)")
    parser.add_argument("--backbone", default="micro-hcx-omni", help="micro backbone to train")
    parser.add_argument("--layers", type=int, default=24, help="backbone layers of the micro model")
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="save the trained micro pipeline to this folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--out", help="also write the figures as JSON to this file")


def translation_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """English and Korean captions of random synthetic-world scenes."""
    import numpy as np

    from training.toyworld.language import describe
    from training.toyworld.scenes import sample_scene

    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        scene = sample_scene(rng)
        pairs.append((describe(scene, "en"), describe(scene, "ko")))
    return pairs


def chat(english: str, korean: str | None = None):
    from omni import Sample, Text, Turn

    turns = [Turn("user", [Text(f"translate to Korean: {english}")])]
    if korean is not None:
        turns.append(Turn("assistant", [Text(korean)]))
    return Sample(turns)


def train_micro(pipe, steps: int, seed: int, learning_rate: float = 3e-3) -> float:
    """A short LM + MTP training run on translation pairs, on the model's device; returns the
    last loss."""
    import torch

    from omni.common.loop import TrainLoop

    model, processor = pipe.model, pipe.processor
    pairs = translation_pairs(4000, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    balancer = model.enable_bias_balancing()
    model.train()
    loss = float("nan")
    loop = TrainLoop(None, steps, {"model": model}, {"model": optimizer}, desc="micro LM + MTP")
    for step in loop:
        batch = [chat(en, ko) for en, ko in pairs[(step * 16) % 3984 : (step * 16) % 3984 + 16]]
        out = model(**processor(batch).to(model.device).model_inputs())
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if balancer is not None:
            balancer.update()
        loss = out.loss.item()
        loop.log(loss=loss, mtp=out.mtp_loss.item())
    model.eval()
    return loss


def measure(pipe, prompts, max_new_tokens: int, repeats: int = 3) -> dict:
    """Tokens/s of plain and speculative greedy decoding over the same prompts.

    The two modes alternate prompt by prompt, repeat after repeat, so a change in machine load
    during the run weighs on both alike.
    """
    totals = {
        mode: {"tokens": 0, "decode_s": 0.0, "total_s": 0.0} for mode in ("plain", "speculative")
    }
    drafts = accepted = paused = 0
    identical = True
    for _ in range(repeats):
        for prompt in prompts:
            answers = {}
            for mode in ("plain", "speculative"):
                result = pipe.generate(
                    prompt, max_new_tokens=max_new_tokens, speculative=mode == "speculative"
                )
                answers[mode] = result.tokens
                totals[mode]["tokens"] += len(result.tokens)
                totals[mode]["decode_s"] += result.timings["decode_s"]
                totals[mode]["total_s"] += result.timings["decode_s"] + result.timings["prefill_s"]
                if mode == "speculative":
                    drafts += result.usage["drafts"]
                    accepted += result.usage["accepted_drafts"]
                    paused += result.usage["paused_draft_steps"]
            identical &= answers["plain"] == answers["speculative"]
    figures: dict = {}
    for mode, total in totals.items():
        figures[mode] = {
            "tokens": total["tokens"],
            "tokens_per_s": round(total["tokens"] / total["decode_s"], 1),
            "tokens_per_s_with_prefill": round(total["tokens"] / total["total_s"], 1),
        }
    figures["speculative"]["acceptance_rate"] = round(accepted / max(drafts, 1), 3)
    # Steps the adaptive policy decoded without a draft, because recent drafts did not pay.
    figures["speculative"]["paused_draft_steps"] = paused
    for key, name in (
        ("tokens_per_s", "speedup"),
        ("tokens_per_s_with_prefill", "speedup_with_prefill"),
    ):
        figures[name] = round(figures["speculative"][key] / figures["plain"][key], 3)
    figures["identical_greedy_output"] = identical
    return figures


def audio_latency(pipe, max_new_tokens: int = 120) -> dict:
    """Time to the first streamed audio chunk vs time to the whole answer."""
    start = time.perf_counter()
    first = None
    for event in pipe.stream("say it", "audio", max_new_tokens=max_new_tokens, speculative=False):
        if event.kind == "audio" and first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return {"first_audio_chunk_s": round(first or total, 4), "full_audio_s": round(total, 4)}


def run(args: argparse.Namespace) -> int:
    import torch

    import omni
    from omni.presets import build_micro_pipeline

    torch.set_num_threads(1)
    if args.model:
        pipe = omni.load(args.model)
        trained = None
    else:
        pipe = build_micro_pipeline(
            args.backbone, seed=args.seed, voices=("en-f1",), num_hidden_layers=args.layers
        )
        trained = train_micro(pipe, args.train_steps, args.seed)
        if args.save:
            pipe.save_pretrained(args.save)
    prompts = [chat(en) for en, _ in translation_pairs(args.prompts, args.seed + 1)]
    figures = {"model": args.model or args.backbone, "final_train_loss": trained}
    figures["decoding"] = measure(pipe, prompts, args.max_new_tokens)
    if "audio" in pipe.decoders:
        figures["streaming"] = audio_latency(pipe)
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    if args.json:
        print(json.dumps(figures))
        return 0
    plain, fast = figures["decoding"]["plain"], figures["decoding"]["speculative"]
    print(f"model: {figures['model']} (final train loss {trained})")
    decoding = figures["decoding"]
    print(
        f"plain decoding       : {plain['tokens_per_s']:8.1f} tokens/s (with prefill {plain['tokens_per_s_with_prefill']:.1f})"
    )
    print(
        f"MTP speculative      : {fast['tokens_per_s']:8.1f} tokens/s (with prefill {fast['tokens_per_s_with_prefill']:.1f})"
    )
    print(
        f"speedup              : {decoding['speedup']:.2f}x decoding, {decoding['speedup_with_prefill']:.2f}x with prefill (goal >= 1.5x)"
    )
    print(f"draft acceptance rate: {fast['acceptance_rate']:.1%}")
    print(
        f"steps without a draft: {fast['paused_draft_steps']} (drafting paused: too few accepted)"
    )
    print(f"greedy outputs equal : {figures['decoding']['identical_greedy_output']}")
    if "streaming" in figures:
        stream = figures["streaming"]
        print(f"first audio chunk    : {stream['first_audio_chunk_s']:.3f} s")
        print(f"whole audio answer   : {stream['full_audio_s']:.3f} s")
    return 0
