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
each speculative arm reports its acceptance at every draft depth. On MoE backbones the
experts implementations transformers offers (``omni.experts``) are timed in one decode step and
in 2-to-5-token verification steps. ``bench_decode_peer.py`` holds the DeepSeek-V3 peer.

    .venv/bin/python benchmarks/bench_decode.py            # the full run, for a quiet machine
    .venv/bin/python benchmarks/bench_decode.py --smoke    # a tiny configuration, minutes
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from transformers import DynamicCache
from transformers.generation.configuration_utils import CompileConfig

from omni.constraints import ConstrainedLogits, OutputConstraint
from omni.decoding import Decoder, Sampling
from omni.experts import EXPERTS_IMPLEMENTATIONS, experts_implementation, use_experts
from omni.inputs import to_sample
from omni.presets import build_micro_pipeline
from omni.speculation import SpeculationPolicy, speculative_columns

MODELS = {  # name: (preset, backbone layers; None keeps the preset's)
    "hcx-omni-6": ("micro-hcx-omni", 6),
    "hcx-omni-24": ("micro-hcx-omni", 24),
    "k-exaone": ("micro-k-exaone", None),
}
PROMPTS = {"text": "translate to Korean: {}", "image": "draw: {}", "audio": "say: {}"}
SMOKE = dict(models=["hcx-omni-6"], layers=2, train_steps=2, tokens=10, batches=[1, 2], repeats=1)


def build(preset: str, layers: int | None, train_steps: int, seed: int):
    """A micro pipeline, trained for ``train_steps`` (LM + MTP) on en -> ko translation."""
    from training.bench_generate_cli import train_micro

    overrides = {} if layers is None else {"num_hidden_layers": layers}
    pipe = build_micro_pipeline(preset, seed=seed, **overrides)
    if train_steps:
        train_micro(pipe, train_steps, seed)
    return pipe


def prompts_for(modality: str, count: int, seed: int):
    from training.bench_generate_cli import chat, translation_pairs

    english = [en for en, _ in translation_pairs(count, seed + 1)]
    if modality == "text":  # the chat the model was trained on
        return [chat(en) for en in english]
    return [to_sample(PROMPTS[modality].format(en), None) for en in english]


def arms(pipe, batch, modality: str, tokens: int, depths: list[int]) -> dict:
    """The decoding arms over one prompt batch: name -> function returning (answers, stats)."""
    model, rows = pipe.model, batch.input_ids.shape[0]
    constraint = OutputConstraint(pipe.layout, modality)
    end_turn, pad = pipe.layout.special_id("<|endofturn|>"), pipe.layout.special_id("<|pad|>")

    def hf_generate(**options):
        out = model.backbone.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            max_new_tokens=tokens,
            do_sample=False,
            logits_processor=[ConstrainedLogits(constraint, batch.input_ids.shape[1], tokens)],
            eos_token_id=end_turn,
            pad_token_id=pad,
            **options,
        )
        answers = []
        for row in out[:, batch.input_ids.shape[1] :].tolist():
            answers.append(row[: row.index(end_turn) + 1] if end_turn in row else row)
        return answers, None

    def omni(depth: int | None, speculative: bool, compiled: bool = False):
        def run():
            decoder = Decoder(model, [constraint] * rows, Sampling(), tokens, compiled=compiled)
            loop = (
                speculative_columns(decoder, batch, SpeculationPolicy(depth=depth))
                if speculative
                else decoder.columns(batch)
            )
            for _ in loop:
                pass
            return decoder.answers, decoder.stats

        return run

    table = {"hf_generate": hf_generate, "omni_plain": omni(None, False)}
    table.update({f"omni_k{k}": omni(k, True) for k in depths})
    table["omni_auto"] = omni(None, True)
    table["omni_compiled"] = omni(None, False, compiled=True)
    return table


def compiled() -> CompileConfig:
    """transformers' static cache + ``torch.compile`` decode step, on every device (its
    ``generate`` compiles only on accelerators unless told to)."""
    config = CompileConfig(mode="default")
    config._compile_all_devices = True
    return config


def in_turn(functions: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall time of each function, run in turn; and each one's last result."""
    results = {name: fn() for name, fn in functions.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, results


@torch.no_grad()
def measure_decoding(pipe, modality: str, batch_size: int, args) -> dict:
    """Tokens/s of every arm for one modality and batch size, as ratios to the baseline."""
    samples = prompts_for(modality, batch_size, args.seed)
    batch = pipe.processor(samples, padding_side="left", add_generation_prompt=True)
    functions = arms(pipe, batch, modality, args.tokens, args.depths)
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


def batch_scaling(decoding: dict) -> dict:
    """Each arm's tokens/s at each batch size over its tokens/s at batch 1 (same output)."""
    scaling = {}
    for key, figure in decoding.items():
        modality, size = key.split("@")
        single = decoding.get(f"{modality}@1")
        if single is not None and size != "1":
            scaling[key] = {
                arm: round(rate / single["tokens_per_s"][arm], 2)
                for arm, rate in figure["tokens_per_s"].items()
            }
    return scaling


def markdown(figures: dict) -> str:
    """The docs table: speculative speed-up over transformers' generate, per row of the run."""
    lines = [
        "| model | output | batch | omni plain | best k | omni best k | omni auto | "
        "omni compiled | hf compiled | acceptance (auto, by depth) | identical |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model, entry in figures["models"].items():
        for key, figure in entry["decoding"].items():
            modality, batch = key.split("@")
            ratios = figure["ratio_to_hf_generate"]
            best = entry["best_k"][key]
            accept = figure["acceptance_by_depth"].get("omni_auto", [])
            lines.append(
                f"| {model} | {modality} | {batch} | {ratios['omni_plain']:.2f}x | {best} | "
                f"{ratios[best]:.2f}x | {ratios['omni_auto']:.2f}x | "
                f"{ratios['omni_compiled']:.2f}x | "
                f"{ratios.get('hf_generate_compiled', float('nan')):.2f}x | "
                f"{', '.join('-' if a is None else f'{a:.0%}' for a in accept)} | "
                f"{'yes' if all(figure['identical_output'].values()) else 'NO'} |"
            )
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hf-compiled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time transformers' generate with a static cache and torch.compile "
        "(one compilation per batch shape, tens of seconds each on a CPU)",
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
        entry = {"preset": preset, "layers": pipe.model.config.backbone_config.num_hidden_layers}
        entry["decoding"] = {
            f"{modality}@{size}": measure_decoding(pipe, modality, size, args)
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
        entry["throughput_to_batch_1"] = batch_scaling(entry["decoding"])
        if experts_implementation(pipe.model) is not None:
            entry["experts"] = measure_experts(pipe, args.repeats)
        figures["models"][name] = entry
        print(json.dumps({name: entry}, indent=1))
    figures["table"] = markdown(figures)
    print(figures["table"])
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
