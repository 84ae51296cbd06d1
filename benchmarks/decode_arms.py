"""The decoding arms ``bench_decode.py`` and ``bench_decode_peer.py`` time, and what they run on:
the micro models (or the shipped default model), their prompts, and the in-turn timer."""

from __future__ import annotations

import json
import statistics
import time
from functools import partial
from pathlib import Path

from transformers.generation.configuration_utils import CompileConfig

from omni.constraints import ConstrainedLogits, OutputConstraint
from omni.decoding import Decoder, Sampling
from omni.inputs import to_sample
from omni.presets import build_micro_pipeline
from omni.speculation import SpeculationPolicy, speculative_columns

MODELS = {  # name: (preset, backbone layers; None keeps the preset's); "default": the shipped one
    "hcx-omni-6": ("micro-hcx-omni", 6),
    "hcx-omni-24": ("micro-hcx-omni", 24),
    "k-exaone": ("micro-k-exaone", None),
    "default": ("default", None),
}
WORLD_TASKS = {"text": "translate", "image": "draw", "audio": "tts"}  # the default model's prompts
PROMPTS = {"text": "translate to Korean: {}", "image": "draw: {}", "audio": "say: {}"}


def build(preset: str, layers: int | None, train_steps: int, seed: int):
    """A micro pipeline, trained for ``train_steps`` (LM + MTP) on en -> ko translation; or
    the shipped default model, as it is."""
    from training.bench_generate_cli import train_micro

    if preset == "default":
        import omni

        return omni.load()
    overrides = {} if layers is None else {"num_hidden_layers": layers}
    pipe = build_micro_pipeline(preset, seed=seed, **overrides)
    if train_steps:
        train_micro(pipe, train_steps, seed)
    return pipe


def prompts_for(modality: str, count: int, seed: int, world: Path | None = None):
    """Prompts of the translation task the micro models learned, or, with ``world`` (a toy
    world manifest), the world's own requests (translation, drawing, speech) as the default
    model was trained on them."""
    from training.bench_generate_cli import chat, translation_pairs

    if world is not None:
        from training.matrix import prompt_of

        records = [json.loads(line) for line in world.read_text(encoding="utf-8").splitlines()]
        chosen = [r for r in records if r["task"] == WORLD_TASKS[modality]][:count]
        if len(chosen) < count:
            raise ValueError(f"{world} holds {len(chosen)} {WORLD_TASKS[modality]} requests")
        return [prompt_of(record) for record in chosen]
    english = [en for en, _ in translation_pairs(count, seed + 1)]
    if modality == "text":  # the chat the model was trained on
        return [chat(en) for en in english]
    return [to_sample(PROMPTS[modality].format(en), None) for en in english]


def toy_world(args) -> Path:
    """A small toy world (translation, drawing and speech requests) for the default model's
    prompts, written once under the system's temporary folder."""
    import tempfile

    from training.toyworld.tasks import generate

    count = max([*args.batches, args.zero_prompts])
    folder = Path(tempfile.gettempdir()) / f"omni-bench-decode-world-{count}-{args.seed}"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        generate(folder, 3 * count, args.seed, tasks=list(WORLD_TASKS.values()))
    return manifest


def arms(pipe, batch, modality: str, tokens: int, depths: list[int], carried) -> dict:
    """The decoding arms over one prompt batch: name -> function returning (answers, stats).
    ``omni_auto`` drafts with ``carried``, the policy kept across calls as ``omni.generate``
    keeps one per output modality, so its acceptance history is warm as in a serving process."""
    model, rows = pipe.model, batch.input_ids.shape[0]
    batch = batch.to(model.device)  # transformers' generate takes the ids where the model is
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

    def omni(policy, speculative: bool, compiled: bool = False):
        def run():
            decoder = Decoder(model, [constraint] * rows, Sampling(), tokens, compiled=compiled)
            loop = (
                speculative_columns(decoder, batch, policy())
                if speculative
                else decoder.columns(batch)
            )
            for _ in loop:
                pass
            return decoder.answers, decoder.stats

        return run

    table = {"hf_generate": hf_generate, "omni_plain": omni(None, False)}
    table.update({f"omni_k{k}": omni(partial(SpeculationPolicy, depth=k), True) for k in depths})
    table["omni_auto"] = omni(lambda: carried, True)
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
