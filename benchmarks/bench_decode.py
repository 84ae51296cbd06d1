"""Decoding speed: Omni plain and MTP-speculative decoding against transformers' ``generate``.

Every figure is a ratio from one run, the arms taken in turn (one call of each, then the next
round), so machine speed and load changes hit every arm alike. On each micro model (micro-hcx-omni
at 6 and 24 layers, micro-k-exaone), trained briefly on the toy world's translation task so its
MTP head has something to draft, for text, image codes and speech units, at batch sizes 1, 4 and
16, the arms are:

- ``hf_generate``: transformers' ``generate`` on the same backbone and weights, greedy, with the
  same output constraint as a logits processor (the baseline every ratio is taken against);
- ``omni_plain``: Omni's token loop without drafts;
- ``omni_k1`` .. ``omni_k4``: MTP-speculative decoding with chains of k drafts;
- ``omni_auto``: speculative decoding with the depth chosen from the measured acceptance;
- ``omni_compiled``: Omni's plain loop on a static cache with a compiled step (``compiled=True``);
- ``hf_generate_compiled`` (``--no-hf-compiled`` skips it): transformers' ``generate`` with a
  static cache and a ``torch.compile``d decode step.

Each arm's answers are checked against the baseline's (greedy output must be identical), and
each speculative arm reports its acceptance at every draft depth. ``omni_auto`` keeps its policy
over calls, per output modality, as ``omni.generate`` does. At the largest batch size the same
prompts are also answered one at a time and as one batch, arms in turn (batch throughput);
and each model's MTP module is swapped for an untrained one to measure what speculation costs
where no draft is accepted. The shipped default model (``default``) runs as it is, on prompts
of a small toy world. On MoE backbones the
experts implementations transformers offers (``omni.experts``) are timed in one decode step and
in 2-to-5-token verification steps. ``bench_decode_peer.py`` holds the DeepSeek-V3 peer.

    .venv/bin/python benchmarks/bench_decode.py            # the full run, for a quiet machine
    .venv/bin/python benchmarks/bench_decode.py --smoke    # a tiny configuration, minutes
    .venv/bin/python benchmarks/bench_decode.py --models default --parts zero  # merged in
"""

from __future__ import annotations

import argparse
import json
import statistics
from functools import partial
from pathlib import Path

import torch
from decode_arms import (  # beside this script
    MODELS,
    PROMPTS,
    arms,
    build,
    compiled,
    in_turn,
    prompts_for,
    toy_world,
)
from decode_report import PARTS, markdown, merged  # beside this script
from transformers import DynamicCache

from omni.experts import EXPERTS_IMPLEMENTATIONS, experts_implementation, use_experts
from omni.speculation import SpeculationPolicy

SMOKE = dict(
    models=["hcx-omni-6"],
    layers=2,
    train_steps=2,
    tokens=10,
    batches=[1, 2],
    repeats=1,
    zero_prompts=2,
    zero_passes=1,
    throughput_repeats=1,
)


@torch.no_grad()
def measure_decoding(pipe, modality: str, batch_size: int, args, carried, world=None) -> dict:
    """Tokens/s of every arm for one modality and batch size, as ratios to the baseline."""
    samples = prompts_for(modality, batch_size, args.seed, world)
    batch = pipe.processor(samples, padding_side="left", add_generation_prompt=True)
    functions = arms(pipe, batch, modality, args.tokens, args.depths, carried)
    if args.hf_compiled:
        functions["hf_generate_compiled"] = partial(
            functions["hf_generate"], cache_implementation="static", compile_config=compiled()
        )
    medians, results = in_turn(functions, args.repeats)
    baseline_answers = results["hf_generate"][0]
    rates = {name: sum(len(a) for a in results[name][0]) / medians[name] for name in functions}
    figure = {"tokens_per_s": {k: round(v, 1) for k, v in rates.items()}}
    figure["ratio_to_hf_generate"] = {
        k: round(v / rates["hf_generate"], 3) for k, v in rates.items()
    }
    figure["ratio_to_omni_plain"] = {k: round(v / rates["omni_plain"], 3) for k, v in rates.items()}
    figure["identical_output"] = {name: results[name][0] == baseline_answers for name in functions}
    figure["acceptance_by_depth"] = {
        name: [None if r is None else round(r, 3) for r in stats.depth_acceptance]
        for name, (_, stats) in results.items()
        if stats is not None and stats.drafts
    }
    return figure


@torch.no_grad()
def measure_zero_acceptance(pipe, args, world=None) -> dict:
    """What speculation costs where no draft is accepted: the model's MTP module swapped for a
    freshly initialised one, text answers one request at a time, plain and speculative
    (the adaptive policy carried over requests, as ``omni.generate`` does) taken in turn
    prompt by prompt. A first pass over the prompts warms up and is not counted; then
    ``--zero-passes`` passes, the arms' order swapped from one pass to the next (plain first,
    then speculative first), so neither arm always runs on caches the other warmed. Seconds are
    the decoding loop's own (prefill excluded: it is the same forward in both arms)."""
    from omni.mtp import MultiTokenPredictor

    model = pipe.model
    trained = model.mtp
    torch.manual_seed(args.seed)
    model.mtp = MultiTokenPredictor(model.config.backbone_config).to(
        device=model.device, dtype=model.dtype
    )
    policy = SpeculationPolicy()
    samples = prompts_for("text", args.zero_prompts, args.seed, world)
    arms_of = [("plain", "auto"), ("auto", "plain")]
    # [pass][prompt][arm] -> (seconds, tokens)
    timed: list[list[dict]] = []
    identical, drafts, accepted, paused = True, 0, 0, 0
    try:
        for index in range(args.zero_passes + 1):
            rows = []
            for sample in samples:
                batch = pipe.processor([sample], padding_side="left", add_generation_prompt=True)
                table = arms(pipe, batch, "text", args.tokens, [], policy)
                runs = {arm: table[f"omni_{arm}"]() for arm in arms_of[index % 2]}
                identical &= runs["plain"][0] == runs["auto"][0]
                rows.append({arm: (st.decode_s, st.new_tokens) for arm, (_, st) in runs.items()})
                if index:
                    stats = runs["auto"][1]
                    drafts, accepted = drafts + stats.drafts, accepted + stats.accepted
                    paused += stats.paused_steps
            if index:  # the first pass warms up
                timed.append(rows)
    finally:
        model.mtp = trained

    def ratio(cells: list[dict]) -> float:
        rate = {
            arm: sum(c[arm][1] for c in cells) / sum(c[arm][0] for c in cells)
            for arm in ("plain", "auto")
        }
        return rate["auto"] / rate["plain"]

    every = [cell for rows in timed for cell in rows]
    per_prompt = [ratio([rows[i] for rows in timed]) for i in range(len(samples))]
    seconds = {arm: sum(c[arm][0] for c in every) for arm in ("plain", "auto")}
    tokens = sum(c["auto"][1] for c in every)
    return {
        "prompts": len(samples),
        "passes": args.zero_passes,
        "tokens": tokens,
        "tokens_per_s": {f"omni_{arm}": round(tokens / s, 1) for arm, s in seconds.items()},
        "ratio_to_omni_plain": round(ratio(every), 3),
        "ratio_by_pass": [round(ratio(rows), 3) for rows in timed],
        "median_ratio_per_prompt": round(statistics.median(per_prompt), 3),
        "drafts": drafts,
        "accepted": accepted,
        "paused_steps": paused,
        "identical_output": identical,
    }


@torch.no_grad()
def measure_experts(pipe, repeats: int, widths=(1, 2, 3, 5)) -> dict:
    """Milliseconds of one decode step (width 1) and of verification steps (2-5 tokens) with
    each experts implementation, as ratios to transformers' default (``grouped_mm``)."""
    model = pipe.model
    original = experts_implementation(model)
    prompt = torch.randint(0, pipe.layout.text_size, (1, 48))
    cache = DynamicCache(config=model.config)
    cache.activate_past_recording()  # sliding-window layers must be able to roll back
    model(input_ids=prompt, cache=cache, use_cache=True)
    length = cache.get_seq_length()
    functions = {}
    for implementation in EXPERTS_IMPLEMENTATIONS:
        for width in widths:

            def step(implementation=implementation, width=width):
                use_experts(model, implementation)
                positions = torch.arange(length, length + width).unsqueeze(0)
                model(input_ids=prompt[:, :width], position_ids=positions, cache=cache)
                cache.crop(-width)

            functions[f"{implementation}@{width}"] = step
    medians, _ = in_turn(functions, 10 * repeats)
    use_experts(model, original)
    return {
        str(width): {
            impl: {
                "ms": round(medians[f"{impl}@{width}"] * 1e3, 3),
                "ratio_to_grouped_mm": round(
                    medians[f"{impl}@{width}"] / medians[f"grouped_mm@{width}"], 3
                ),
            }
            for impl in EXPERTS_IMPLEMENTATIONS
        }
        for width in widths
    }


@torch.no_grad()
def measure_throughput(pipe, modality: str, size: int, args, carried, world=None) -> dict:
    """Tokens/s answering the same ``size`` prompts one at a time and as one batch, plain and
    speculative (the carried adaptive policy), the four arms in turn; the batched answers must
    equal the one-at-a-time ones."""
    samples = prompts_for(modality, size, args.seed, world)

    def tables(groups):
        batches = [
            pipe.processor(g, padding_side="left", add_generation_prompt=True) for g in groups
        ]
        return [arms(pipe, b, modality, args.tokens, [], carried) for b in batches]

    def answering(table_list, arm):
        def run():
            return [a for table in table_list for a in table[arm]()[0]], None

        return run

    singles, together = tables([[s] for s in samples]), tables([samples])
    functions = {
        f"{arm}_{how}": answering(table_list, f"omni_{arm}")
        for arm in ("plain", "auto")
        for how, table_list in (("one_at_a_time", singles), ("batched", together))
    }
    medians, results = in_turn(functions, args.throughput_repeats)
    rates = {k: sum(len(a) for a in results[k][0]) / medians[k] for k in functions}
    return {
        "tokens_per_s": {k: round(v, 1) for k, v in rates.items()},
        "batched_over_one_at_a_time": {
            arm: round(rates[f"{arm}_batched"] / rates[f"{arm}_one_at_a_time"], 2)
            for arm in ("plain", "auto")
        },
        "identical_output": all(results[k][0] == results["plain_one_at_a_time"][0] for k in rates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--layers", type=int, help="override every model's backbone layers")
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--modalities", nargs="+", default=list(PROMPTS), choices=list(PROMPTS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--depths", nargs="+", type=int, default=[1, 2, 3, 4])
    parser.add_argument("--tokens", type=int, default=48, help="max new tokens per answer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--throughput-repeats",
        type=int,
        default=3,
        help="timed rounds of the batch throughput arms (the largest batch size, one at a time "
        "vs batched)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hf-compiled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time transformers' generate with a static cache and torch.compile "
        "(one compilation per batch shape, tens of seconds each on a CPU)",
    )
    parser.add_argument(
        "--zero-prompts",
        type=int,
        default=48,
        help="text prompts for the cost of speculation with a fresh, never-accepted MTP module "
        "(0 skips it)",
    )
    parser.add_argument(
        "--zero-passes",
        type=int,
        default=3,
        help="timed passes over the zero-acceptance prompts, the arms' order swapped each pass",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        default=list(PARTS),
        choices=PARTS,
        help="what to measure; a run of some models or parts is merged into --out, replacing "
        "only the entries it measured",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="a tiny configuration: " + str(SMOKE))
    parser.add_argument("--out", help="JSON figures (default: bench_decode.json beside this)")
    args = parser.parse_args()
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
    out = Path(args.out or Path(__file__).with_suffix(".json"))
    torch.set_num_threads(args.threads)
    figures = {"arguments": vars(args) | {"out": str(out)}, "models": {}}
    for name in args.models:
        preset, layers = MODELS[name]
        pipe = build(preset, args.layers or layers, args.train_steps, args.seed)
        world = toy_world(args) if preset == "default" else None
        entry = {"preset": preset, "layers": pipe.model.config.backbone_config.num_hidden_layers}
        policies = {modality: SpeculationPolicy() for modality in args.modalities}
        if "decoding" in args.parts:
            entry["decoding"] = {
                f"{modality}@{size}": measure_decoding(
                    pipe, modality, size, args, policies[modality], world
                )
                for modality in args.modalities
                for size in args.batches
            }
            entry["best_k"] = {
                key: max(
                    (f"omni_k{k}" for k in args.depths),
                    key=lambda arm, f=figure: f["tokens_per_s"][arm],
                )
                for key, figure in entry["decoding"].items()
            }
        size = max(args.batches)
        if size > 1 and "throughput" in args.parts:
            entry[f"throughput_batch_{size}"] = {
                modality: measure_throughput(pipe, modality, size, args, policies[modality], world)
                for modality in args.modalities
            }
        if experts_implementation(pipe.model) is not None and "experts" in args.parts:
            entry["experts"] = measure_experts(pipe, args.repeats)
        if args.zero_prompts and "zero" in args.parts:
            entry["zero_acceptance"] = measure_zero_acceptance(pipe, args, world)
        figures["models"][name] = entry
        print(json.dumps({name: entry}, indent=1))
    full = set(args.models) == set(MODELS) and set(args.parts) == set(PARTS)
    figures = figures if args.smoke else merged(out, figures, full)
    figures["table"] = markdown(figures)
    print(figures["table"])
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
