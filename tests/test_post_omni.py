"""An Omni micro pipeline as a SnapPO policy: image prompts, and text, image or speech answers
sampled by the pipeline, rewarded by the checkers and trained on through the snapshots."""

import json

import pytest
import torch
from PIL import Image
from transformers import AutoModelForCausalLM, AutoTokenizer

import omni
from omni.cli import main
from omni.presets import build_micro_pipeline
from training.post.generate_stage import GenerateSettings, run_generate_stage
from training.post.manifest_prompts import manifest_chats
from training.post.omni_policy import omni_prompt, omni_sampler
from training.post.policy import (
    load_policy,
    media_for_rows,
    prompt_media,
    response_logps,
    save_policy,
)
from training.post.reward_stage import run_reward_stage
from training.post.rollouts import load_answer
from training.post.snapshots import SnapshotStore
from training.post.train_stage import TrainSettings, run_train_stage
from training.toyworld.scenes import Scene, render_scene
from training.toyworld.tasks import generate as generate_world

SCENE = Scene.from_attributes(
    [{"shape": "circle", "colour": "red", "size": "big", "position": "left"}]
)


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("micro-omni")
    build_micro_pipeline("micro-llama").save_pretrained(folder)
    return folder


@pytest.fixture
def policy(tmp_path, pipeline_folder):
    store = SnapshotStore(tmp_path / "store")
    model = AutoModelForCausalLM.from_pretrained(pipeline_folder)
    return store, save_policy(store, model, source=pipeline_folder)


def _vqa_prompt(store, key, tmp_path):
    image = tmp_path / "scene.png"
    render_scene(SCENE).save(image)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": str(image)},
                {"type": "text", "text": "What colour is it?"},
            ],
        }
    ]
    folder = store.folder("policies", key)
    model = load_policy(store, key)
    return omni_prompt(model, AutoTokenizer.from_pretrained(folder), messages, {"answer": "red"})


def test_image_prompts_are_sampled_scored_and_trained_on_with_their_media(tmp_path, policy):
    store, key = policy
    prompt = _vqa_prompt(store, key, tmp_path)
    sampler = omni_sampler("text", max_new_tokens=4)
    sampled = run_generate_stage(store, key, [prompt], sampler, GenerateSettings(group_size=2))
    rollout = store.read("rollouts", sampled.key)
    assert rollout.record["messages"] == [prompt.messages]
    assert all(isinstance(a["text"], str) for a in rollout.record["answers"])

    model, t = load_policy(store, key), rollout.tensors
    rows = (t["prompt_tokens"].repeat_interleave(2, 0), t["prompt_mask"].repeat_interleave(2, 0))
    media = media_for_rows([prompt_media(model, prompt.messages)], [0, 0])
    with torch.no_grad():
        scored = response_logps(model, *rows, t["tokens"], t["mask"], media)
        with pytest.raises(ValueError, match="placeholder slots"):
            response_logps(model, *rows, t["tokens"], t["mask"])  # the image is needed
    assert torch.allclose(scored * t["mask"], t["logps"] * t["mask"], atol=1e-4)

    scored_key = run_reward_stage(store, sampled.key, {"exact_match": 1.0, "format": 0.1}).key
    settings = TrainSettings(loss="agapo", learning_rate=1e-3, micro_batch=2)
    trained = run_train_stage(store, key, sampled.key, scored_key, settings)
    assert trained.computed and trained.steps == 1
    # the new snapshot is a complete pipeline folder: it loads and answers
    pipeline = omni.load(store.folder("policies", trained.key))
    answer = omni.generate("What colour?", "text", model=pipeline, max_new_tokens=3)
    assert isinstance(answer.text, str)


@pytest.mark.parametrize("modality, reward", [("image", "drawn_objects"), ("audio", None)])
def test_image_and_speech_answers_reach_the_reward_stage_decoded(
    tmp_path, policy, modality, reward
):
    store, key = policy
    model = load_policy(store, key)
    tokenizer = AutoTokenizer.from_pretrained(store.folder("policies", key))
    messages = [{"role": "user", "content": "draw a big red circle on the left"}]
    prompt = omni_prompt(model, tokenizer, messages, {"attributes": SCENE.to_meta()})
    budget = 200 if modality == "image" else 40
    sampled = run_generate_stage(
        store, key, [prompt], omni_sampler(modality, budget), GenerateSettings(group_size=2)
    )
    rollout = store.read("rollouts", sampled.key)
    entries = rollout.record["answers"]
    assert all(modality in entry for entry in entries)
    first = load_answer(rollout, 0)
    if modality == "image":
        assert isinstance(first, Image.Image)
        values = store.read("rewards", run_reward_stage(store, sampled.key, {reward: 1.0}).key)
        assert all(0.0 <= v <= 1.0 for v in values.record["rewards"])
    else:
        wave, rate = first
        assert rate == 16000 and wave.ndim == 1 and len(wave) > 0


def test_omni_rl_loop_over_a_toy_world_manifest(tmp_path, pipeline_folder, capsys):
    world = tmp_path / "world"
    manifest = generate_world(world, n=12, seed=0, tasks=("vqa", "draw"), progress=False)
    chats, modality = manifest_chats(manifest, "vqa", "train", limit=2)
    assert modality == "text" and len(chats) == 2
    assert chats[0][0][-1]["content"][0]["type"] == "image"  # the scene, as a file path
    assert manifest_chats(manifest, "draw", "train")[1] == "image"

    store = tmp_path / "store"
    assert main(["rl", "--store", str(store), "init", "--model", str(pipeline_folder)]) == 0
    policy = json.loads(capsys.readouterr().out)["policy"]
    loop = ["rl", "--store", str(store), "loop", "--policy", policy, "--manifest", str(manifest)]
    loop += ["--task", "vqa", "--split", "train", "--limit", "2", "--group-size", "2"]
    loop += ["--max-new-tokens", "4", "--reward", "exact_match", "format=0.1", "--loss", "agapo"]
    assert main(loop) == 0
    (round_,) = json.loads(capsys.readouterr().out)["rounds"]
    assert all(round_["computed"].values())
    assert main(loop) == 0
    assert not any(json.loads(capsys.readouterr().out)["rounds"][0]["computed"].values())
    with pytest.raises(ValueError, match="no 'vqa' samples in split 'unseen'"):
        manifest_chats(manifest, "vqa", "unseen")
