"""``omni train default``: the plan reuses shipped components, resumes what is on disk, and at
a tiny scale runs end to end into a pipeline folder that ``omni.load`` loads."""

from __future__ import annotations

import json
from pathlib import Path

import omni
from omni.cli import main
from training.default_run import DefaultRun

ROOT = Path(__file__).resolve().parents[1]


def test_plan_reuses_components_and_trains_the_missing_ones(tmp_path):
    reused = DefaultRun(tmp_path / "run", components=ROOT / "assets").plan()
    names = [step.name for step in reused]
    assert names == ["toyworld", "long", "reasoning", "agentic", "lm", "assemble"]
    lm = next(step for step in reused if step.name == "lm").argv
    assert f"image={ROOT / 'assets/tokenizers/image'}" in lm and "--resume" in lm
    assert f"audio={ROOT / 'assets/decoders/vocoder'}" in lm
    trained = DefaultRun(tmp_path / "run", component_steps=3).plan()
    steps = {step.name: step for step in trained}
    assert {"image_tokenizer", "speech_tokenizer", "image_decoder", "vocoder"} <= set(steps)
    decoder = steps["image_decoder"].argv
    assert decoder[decoder.index("--tokenizer") + 1] == str(
        tmp_path / "run/components/image_tokenizer"
    )
    assert steps["vocoder"].done_when == tmp_path / "run/components/vocoder/vocoder/config.json"
    assert decoder[-2:] == ["--steps", "3"]


def test_the_world_step_writes_every_task_in_the_chosen_style(tmp_path):
    classic = DefaultRun(tmp_path, components=ROOT / "assets", style="classic").plan()[0].argv
    assert classic[classic.index("--style") + 1] == "classic"
    assert {"video_qa", "video_caption", "draw"} <= set(classic[classic.index("--tasks") + 1 :])
    varied = DefaultRun(tmp_path).plan()[0].argv
    assert varied[varied.index("--style") + 1] == "varied"


def test_a_step_whose_output_is_on_disk_is_done(tmp_path):
    run = DefaultRun(tmp_path, components=ROOT / "assets")
    world = next(step for step in run.plan() if step.name == "toyworld")
    assert not world.done()
    world.done_when.parent.mkdir(parents=True)
    world.done_when.write_text("")
    assert world.done()


def test_train_default_runs_end_to_end_at_a_tiny_scale_and_resumes(tmp_path):
    argv = [
        "train",
        "default",
        "--out",
        str(tmp_path / "run"),
        "--components",
        str(ROOT / "assets"),
    ]
    argv += ["--recipe", str(ROOT / "configs/curriculum-micro.yaml"), "--samples", "42"]
    argv += ["--long-samples", "12", "--long-max-length", "900", "--steps", "1"]
    argv += ["--agentic-samples", "30"]
    assert main(argv) == 0
    pipeline = omni.load(tmp_path / "run/pipeline")
    assert (pipeline.layout.image_codes, pipeline.layout.audio_codes) == (512, 1000)
    assert pipeline.model.mtp is not None
    for stage in ("pretrain-1-discrete", "context-extension", "sft-4-reasoning"):
        assert (tmp_path / "run/lm" / stage / "metrics.csv").is_file()
    timings = json.loads((tmp_path / "run/timings.json").read_text())
    assert timings["lm"] > 0
    log = tmp_path / "run/run.log"
    assert main(argv) == 0  # again: every step is found done, nothing retrains
    assert "lm: done already" in log.read_text()
    assert json.loads((tmp_path / "run/timings.json").read_text())["lm"] == timings["lm"]
