"""``omni train default``: every component, then the LM curriculum, then the pipeline, as one
reproducible, resumable sequence of ``omni`` commands.

The run folder ``OUT`` holds everything on disk::

    data/toyworld, data/long, data/reasoning,     the training data (tool use and safety:
    data/agentic                                  omni data agentic)
    components/<name>/                            components trained here (not --components)
    lm/<stage>/                                   checkpoints, metrics.csv, final (omni train lm)
    pipeline/                                     the assembled pipeline folder (omni.load)
    run.log, timings.json                         what ran, and its wall time per step

Each step is an ``omni`` command a user could type, run in its own process (its output goes
to ``run.log``); a step whose output is already on disk
is skipped, and ``omni train lm --resume`` continues a stage from its last checkpoint, so the
same command resumes an interrupted run. Components are reused from ``--components DIR`` (laid
out like ``assets/``: ``tokenizers/image``, ``tokenizers/speech``, ``decoders/image``,
``decoders/vocoder``) where they are there; the rest are trained from the toy world.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Component -> (its folder under an assets-like --components DIR, the modality it serves).
COMPONENTS = {
    "image_tokenizer": ("tokenizers/image", "image"),
    "speech_tokenizer": ("tokenizers/speech", "audio"),
    "image_decoder": ("decoders/image", "image"),
    "vocoder": ("decoders/vocoder", "audio"),
}
# The decoder trainers save the trained decoder one folder below their --out.
SAVED_BELOW_OUT = {"image_decoder": "decoder", "vocoder": "vocoder"}


@dataclass
class Step:
    """One command of the run, and the file whose presence means it is done (None: always run)."""

    name: str
    argv: list[str]
    done_when: Path | None = None

    def done(self) -> bool:
        return self.done_when is not None and self.done_when.is_file()


@dataclass
class DefaultRun:
    """Where the run writes, what it reuses, and how big its data and stages are."""

    out: Path
    components: Path | None = None
    recipe: str | None = None
    samples: int = 20000
    agentic_samples: int = 6000
    long_samples: int = 2000
    long_max_length: int = 1000
    steps: int | None = None
    component_steps: int | None = None
    seed: int = 0
    style: str = "varied"

    def component(self, name: str) -> Path:
        """The folder of a component: the reused one if ``--components`` has it, else the one
        this run trains."""
        relative, _ = COMPONENTS[name]
        if self.components is not None and (self.components / relative / "config.json").is_file():
            return self.components / relative
        return self._trained_out(name) / SAVED_BELOW_OUT.get(name, "")

    def _trained_out(self, name: str) -> Path:
        return self.out / "components" / name

    def reused(self, name: str) -> bool:
        return not self.component(name).is_relative_to(self.out)

    def _component_steps(self) -> list[Step]:
        world = str(self.out / "data" / "toyworld")
        steps_arg = [] if self.component_steps is None else ["--steps", str(self.component_steps)]
        trainers: dict[str, list[str]] = {
            "image_tokenizer": ["train", "tokenizer", "--kind", "image", "--data", world],
            "speech_tokenizer": ["train", "tokenizer", "--kind", "speech", "--data", world],
            "image_decoder": [
                *("train", "image-decoder", "--data", world),
                *("--tokenizer", str(self.component("image_tokenizer"))),
            ],
            "vocoder": [
                *("train", "vocoder", "--data", world),
                *("--tokenizer", str(self.component("speech_tokenizer"))),
            ],
        }
        steps = []
        for name, argv in trainers.items():
            if self.reused(name):
                continue
            out = str(self._trained_out(name))
            done = self.component(name) / "config.json"
            steps.append(Step(name, [*argv, "--out", out, *steps_arg], done))
        return steps

    def _lm_argv(self) -> list[str]:
        from omni.resources import shipped_path

        data = self.out / "data"
        argv = [
            "train",
            "lm",
            "--recipe",
            self.recipe or str(shipped_path("configs/curriculum.yaml")),
        ]
        argv += ["--stage", "all", "--out", str(self.out / "lm"), "--resume", "--no-progress"]
        argv += ["--data", f"toyworld={data / 'toyworld/manifest.jsonl'}"]
        argv += [
            f"long={data / 'long/manifest.jsonl'}",
            f"reasoning={data / 'reasoning/manifest.jsonl'}",
            f"agentic={data / 'agentic/manifest.jsonl'}",
        ]
        argv += ["--tokenizers", *self._modality_pairs(("image_tokenizer", "speech_tokenizer"))]
        argv += ["--decoders", *self._modality_pairs(("image_decoder", "vocoder"))]
        return argv + ([] if self.steps is None else ["--steps", str(self.steps)])

    def _modality_pairs(self, names: tuple[str, ...]) -> list[str]:
        return [f"{COMPONENTS[n][1]}={self.component(n)}" for n in names]

    def plan(self) -> list[Step]:
        """Every command of the run, in order (done ones included; ``run`` skips them)."""
        data = self.out / "data"
        from training.toyworld.tasks import ALL_TASKS

        world = ["data", "toyworld", "--out", str(data / "toyworld"), "--n", str(self.samples)]
        world += ["--style", self.style, "--tasks", *ALL_TASKS]
        long = ["eval", "niah", "--write-long", "--out", str(data / "long")]
        long += ["--n", str(self.long_samples), "--max-length", str(self.long_max_length)]
        agentic = ["data", "agentic", "--out", str(data / "agentic")]
        agentic += ["--n", str(self.agentic_samples), "--seed", str(self.seed)]
        return [
            Step("toyworld", [*world, "--seed", str(self.seed)], data / "toyworld/manifest.jsonl"),
            Step("long", long, data / "long/manifest.jsonl"),
            Step("reasoning", [], data / "reasoning/manifest.jsonl"),  # a library call, below
            Step("agentic", agentic, data / "agentic/manifest.jsonl"),
            *self._component_steps(),
            Step("lm", self._lm_argv(), self.out / "lm/sft-4-reasoning/final/config.json"),
            Step("assemble", self._assemble_argv()),
        ]

    def _assemble_argv(self) -> list[str]:
        final = self.out / "lm" / "sft-4-reasoning" / "final"
        argv = ["pipeline", "assemble", "--lm", str(final), "--out", str(self.out / "pipeline")]
        argv += ["--tokenizers", *self._modality_pairs(("image_tokenizer", "speech_tokenizer"))]
        return argv + ["--decoders", *self._modality_pairs(("image_decoder", "vocoder"))]


def omni_command(log_file: Path) -> Callable[[list[str]], int]:
    """Runs ``omni ARGV`` in its own process (each step frees its memory when it ends), its
    output appended to ``log_file``; returns the exit status."""
    import subprocess
    import sys

    def command(argv: list[str]) -> int:
        with log_file.open("a", encoding="utf-8") as log:
            return subprocess.run(
                [sys.executable, "-m", "omni.cli", *argv], stdout=log, stderr=subprocess.STDOUT
            ).returncode

    return command


def run_steps(run: DefaultRun, command: Callable[[list[str]], int], log: Callable[[str], None]):
    """Run the plan's steps that are not done yet; returns {step: seconds} (0 for skipped)."""
    import time

    from training.curation import reasoning_manifest

    timings: dict[str, float] = {}
    for step in run.plan():
        if step.done():
            log(f"{step.name}: done already ({step.done_when})")
            timings[step.name] = 0.0
            continue
        log(f"{step.name}: omni {' '.join(step.argv)}" if step.argv else f"{step.name}: ...")
        began = time.perf_counter()
        if step.name == "reasoning":
            reasoning_manifest(run.out / "data/toyworld/manifest.jsonl", run.out / "data/reasoning")
        elif (code := command(step.argv)) != 0:
            raise ValueError(f"step {step.name} failed (exit {code}): omni {' '.join(step.argv)}")
        timings[step.name] = round(time.perf_counter() - began, 1)
    return timings
