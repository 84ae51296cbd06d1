"""Recipes: the stage files, schedules, parameter groups, RoPE scaling and the whole curriculum."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omni.common.schedule import learning_rates
from omni.presets import build_micro
from training.curriculum import (
    GROUPS,
    Curriculum,
    Recipe,
    apply_rope_scaling,
    apply_trainable,
    group_names,
)

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    "pretrain-1-discrete",
    "pretrain-2-continuous",
    "context-extension",
    "sft-1-conversation",
    "sft-2-multimodal",
    "sft-3-video-long",
    "sft-4-reasoning",
]


def test_curriculum_lists_the_seven_stages_and_selects_by_prefix():
    curriculum = Curriculum.load(ROOT / "configs" / "curriculum.yaml")
    assert [r.name for r in curriculum.stages] == STAGES
    assert [r.name for r in curriculum.select("sft-2")] == ["sft-2-multimodal"]
    assert len(curriculum.select("all")) == 7
    with pytest.raises(ValueError, match="matches 0 stages"):
        curriculum.select("sft-9")
    pretrain = curriculum.stages[0]
    assert pretrain.media_mode == "discrete" and pretrain.loss_on == "all"
    assert curriculum.stages[2].rope["rope_type"] == "yarn"


def test_every_stage_file_loads_alone_and_reads_the_curriculum_manifests():
    """The stage files run alone too (``--recipe configs/sft-5-agentic.yaml --init ...``): each
    loads as a one-stage curriculum whose mixture names the manifests curriculum.yaml lists."""
    named = set(Curriculum.load(ROOT / "configs" / "curriculum.yaml").manifests)
    stage_files = sorted(p for p in (ROOT / "configs").glob("*.yaml") if "curriculum" not in p.name)
    assert {"sft-5-agentic.yaml", "mtp-chain.yaml"} <= {p.name for p in stage_files}
    for path in stage_files:
        (recipe,) = Curriculum.load(path).stages
        assert recipe.name == path.stem and recipe.steps > 0
        assert {entry.manifest for entry in recipe.mixture} <= named, path.name
    sft5 = Curriculum.load(ROOT / "configs" / "sft-5-agentic.yaml").stages[0]
    weights = {entry.manifest: 0.0 for entry in sft5.mixture}
    for entry in sft5.mixture:
        weights[entry.manifest] += entry.weight
    assert weights["agentic"] / sum(weights.values()) >= 0.4  # tool episodes lead the stage
    assert "mtp" not in sft5.trainable  # the chain-trained MTP module is kept as it is


def test_schedules_follow_the_recipe():
    recipe = Recipe.from_dict(
        {
            "name": "s",
            "mixture": [{"manifest": "m"}],
            "trainable": ["backbone"],
            "steps": 100,
            "warmup_steps": 10,
            "lr": 1e-3,
            "min_lr_ratio": 0.1,
            "mtp_scale": [[0.0, 0.3], [0.5, 0.1]],
        }
    )
    rates = learning_rates(recipe.lr_schedule(), 101, recipe.lr)
    assert rates[0] == 0.0 and rates[5] == pytest.approx(5e-4) and rates[10] == pytest.approx(1e-3)
    assert rates[100] == pytest.approx(1e-4)
    assert [recipe.mtp_loss_scale(s) for s in (0, 49, 50, 99)] == [0.3, 0.3, 0.1, 0.1]


def test_bad_recipes_name_the_problem():
    base = {"name": "s", "mixture": [{"manifest": "m"}], "trainable": ["backbone"]}
    with pytest.raises(ValueError, match=r"unknown parameter groups \['decoder'\]"):
        Recipe.from_dict({**base, "trainable": ["decoder"]})
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rate'\]"):
        Recipe.from_dict({**base, "learning_rate": 1.0})
    with pytest.raises(ValueError, match="not a multiple"):
        Recipe.from_dict({**base, "rows_per_step": 3, "micro_rows": 2})


def test_groups_cover_every_parameter_and_freeze_the_rest():
    model, _ = build_micro("micro-k-exaone")
    groups = group_names(model)
    assert set(groups.values()) == set(GROUPS) - {"encoders.video"}
    assert groups["backbone.lm_head.weight"] == "embeddings"
    assert groups["encoders.image.projector.0.weight"] == "projectors"
    assert groups["encoders.audio.encoder.conv1.weight"] == "encoders.audio"
    apply_trainable(model, ["projectors", "mtp"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, g in groups.items() if g in ("projectors", "mtp")}


def test_rope_scaling_survives_save_and_load(tmp_path):
    from omni.modeling import OmniForConditionalGeneration

    model, _ = build_micro("micro-llama", encoders={})
    ids = torch.randint(0, 500, (1, 300))
    before = model(input_ids=ids).logits
    apply_rope_scaling(
        model, {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256}
    )
    model.eval()
    after = model(input_ids=ids).logits
    assert not torch.allclose(before, after)  # positions are now scaled
    model.save_pretrained(tmp_path)
    loaded = OmniForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.backbone_config.rope_parameters["rope_type"] == "yarn"
    assert loaded.mtp.block.rotary_emb.rope_type == "yarn"
    assert torch.equal(loaded(input_ids=ids).logits, after)


@pytest.mark.slow
def test_micro_model_runs_the_whole_curriculum_training_only_named_groups(tmp_path):
    from safetensors.torch import load_file

    import omni
    from omni.cli import main
    from tokenizers_mm.text import micro_text_tokenizer
    from training.agentic.generate import generate as generate_agentic
    from training.curation import reasoning_manifest
    from training.niah import write_long_manifest
    from training.toyworld import generate

    world = generate(tmp_path / "world", 42, seed=11, progress=False)
    agentic = generate_agentic(tmp_path / "agentic", 30, 0)
    long = write_long_manifest(tmp_path / "long", 12, micro_text_tokenizer(), 64, 900)
    reasoning = reasoning_manifest(world, tmp_path / "reasoning")
    out = tmp_path / "run"
    assets = ROOT / "assets"  # the shipped tokenizers and decoders, at their real sizes
    code = main(
        [
            "train",
            "lm",
            "--recipe",
            str(ROOT / "configs" / "curriculum-micro.yaml"),
            "--stage",
            "all",
            "--out",
            str(out),
            "--no-progress",
            "--data",
            f"toyworld={world}",
            f"long={long}",
            f"reasoning={reasoning}",
            f"agentic={agentic}",
            "--tokenizers",
            f"image={assets / 'tokenizers/image'}",
            f"audio={assets / 'tokenizers/speech'}",
            "--decoders",
            f"image={assets / 'decoders/image'}",
            f"audio={assets / 'decoders/vocoder'}",
        ]
    )
    assert code == 0
    from training.models import load_code_tokenizers, load_model

    tokenizers = load_code_tokenizers(
        {"image": assets / "tokenizers/image", "audio": assets / "tokenizers/speech"}
    )
    curriculum = Curriculum.load(ROOT / "configs" / "curriculum-micro.yaml")
    model, _ = load_model(None, curriculum.model, tokenizers)  # the run's initial weights
    groups = group_names(model)
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    for recipe in curriculum.stages:
        weights = load_file(out / recipe.name / "final" / "model.safetensors")
        changed = {groups[n] for n in groups if not torch.equal(weights[n], previous[n])}
        assert changed <= set(recipe.trainable), recipe.name
        # sft-4's video source is optional and light (weight 0.5 of 6): the micro run's two
        # rows may hold no clip, and then the video encoder has nothing to learn from.
        untouched = {"encoders.video"} if recipe.name == "sft-4-reasoning" else set()
        assert set(recipe.trainable) - changed <= untouched, recipe.name
        previous = weights
    final = out / "sft-4-reasoning" / "final"
    assert '"rope_type": "yarn"' in (final / "config.json").read_text()
    pipeline = omni.load(final)  # a complete pipeline folder
    assert (pipeline.layout.image_codes, pipeline.layout.audio_codes) == (512, 1000)
    assert set(pipeline.decoders) == {"image", "audio"}
    assert (Path(reasoning).parent / "manifest.hard.jsonl").is_file()  # sft-4 was balanced


def _examples(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(ROOT / "assets" / "toyworld-examples", tmp_path / "world")
    return tmp_path / "world" / "manifest.jsonl"


def test_sft4_mixture_is_balanced_by_the_difficulty_estimator(tmp_path):
    from training.curation import balance_by_difficulty, reasoning_manifest

    world = _examples(tmp_path)
    reasoning = reasoning_manifest(world, tmp_path / "reasoning")
    recipe = Curriculum.load(ROOT / "configs" / "curriculum-micro.yaml").select("sft-4")[0]
    assert recipe.balance_difficulty == ["reasoning"]
    model, processor = build_micro("micro-llama")
    manifests = balance_by_difficulty(
        recipe, {"toyworld": str(world), "reasoning": str(reasoning)}, model, processor
    )
    balanced = [e for e in recipe.mixture if e.manifest.startswith("reasoning.")]
    assert [e.manifest for e in balanced] == [
        "reasoning.easy",
        "reasoning.medium",
        "reasoning.hard",
    ]
    assert sum(e.weight for e in balanced) == pytest.approx(1.0)  # the entry's own weight
    assert balanced[0].weight < balanced[2].weight  # harder samples more often
    hard = Path(manifests["reasoning.hard"]).read_text().splitlines()
    assert hard and all('"difficulty"' in line for line in hard)


def test_a_recipe_cannot_balance_a_manifest_outside_its_mixture():
    base = {"name": "s", "mixture": [{"manifest": "m"}], "trainable": ["backbone"]}
    with pytest.raises(ValueError, match=r"balance_difficulty names \['other'\]"):
        Recipe.from_dict({**base, "balance_difficulty": ["other"]})


def test_sft3_reads_video_samples_by_media_and_skips_them_only_when_optional(tmp_path):
    from training.manifests import Manifest
    from training.trainer import build_packer

    world = _examples(tmp_path)
    sft3 = Curriculum.load(ROOT / "configs" / "curriculum-micro.yaml").select("sft-3")[0]
    video = [e for e in sft3.mixture if e.media == "video"]
    assert len(video) == 1 and video[0].optional
    with_images = {r.sample.task for r in Manifest(world).select(media="image").records}
    assert with_images == {"caption", "vqa", "draw", "spoken_vqa"}
    _, processor = build_micro("micro-llama")
    entries = [{"manifest": "toyworld", "tasks": ["caption"]}, {"manifest": "toyworld"}]
    entries[1].update(media="video", optional=True)
    recipe = Recipe.from_dict({"name": "v", "mixture": entries, "trainable": ["backbone"]})
    assert len(build_packer(recipe, {"toyworld": str(world)}, processor, None).spec.sources) == 1
    recipe.mixture[1].optional = False
    with pytest.raises(ValueError, match="no train samples of tasks None with media video"):
        build_packer(recipe, {"toyworld": str(world)}, processor, None)


def test_sft3_video_source_trains_the_video_path(tmp_path):
    """A world with video clips: sft-3's media source reads them and the video projector learns."""
    import json

    from omni.processor import OmniProcessor
    from training.models import load_model
    from training.trainer import TrainOptions, train_stage

    world = _examples(tmp_path)
    frames = sorted(str(p.name) for p in (world.parent / "media").glob("*.png"))[:3]
    clip = {"type": "video", "frames": [f"media/{f}" for f in frames]}
    with world.open("a") as file:
        for index in range(2):
            turns = [
                {"role": "user", "segments": [clip, {"type": "text", "text": "What moves?"}]},
                {"role": "assistant", "segments": [{"type": "text", "text": "the red circle"}]},
            ]
            record = {"id": f"video-{index}", "task": "video_qa", "split": "train", "turns": turns}
            file.write(json.dumps(record) + "\n")
    curriculum = Curriculum.load(ROOT / "configs" / "curriculum-micro.yaml")
    recipe = curriculum.select("sft-3")[0]
    recipe.mixture = [e for e in recipe.mixture if e.media == "video"]
    model, tokenizer = load_model(None, curriculum.model)
    processor = OmniProcessor.from_model(model, tokenizer)
    before = {
        n: p.clone()
        for n, p in model.named_parameters()
        if n.startswith("encoders.video.") and ".projector." in n
    }
    options = TrainOptions(progress=False, tensorboard=False)
    train_stage(model, processor, recipe, {"toyworld": str(world)}, tmp_path / "run", options)
    after = dict(model.named_parameters())
    assert before and all(not torch.equal(before[n], after[n]) for n in before)
