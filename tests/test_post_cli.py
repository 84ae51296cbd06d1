"""`omni rl` and `omni pref` run the SnapPO stages from the command line on a micro model."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from omni.cli import main
from tokenizers_mm.text import micro_text_tokenizer
from training.post.stage_commands import parse_reward_spec


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    tokenizer = micro_text_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    folder = tmp_path_factory.mktemp("model")
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def omni(capsys, *argv):
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_rl_stages_from_the_command_line(tmp_path, model_folder, capsys):
    store = tmp_path / "store"
    prompts = tmp_path / "prompts.jsonl"
    lines = [{"text": "is it red?", "meta": {"answer": "yes"}}, {"ids": [5, 6, 7], "meta": {}}]
    prompts.write_text("\n".join(json.dumps(line) for line in lines))
    policy = omni(capsys, "rl", "--store", store, "init", "--model", model_folder)["policy"]
    sampled = omni(
        capsys,
        "rl",
        "--store",
        store,
        "generate",
        "--policy",
        policy,
        "--prompts",
        prompts,
        "--group-size",
        2,
        "--max-new-tokens",
        3,
    )
    assert sampled["computed"] and sampled["responses"] == 4
    reward = ("rl", "--store", store, "reward", "--rollout", sampled["key"], "--reward", "format")
    first, again = omni(capsys, *reward), omni(capsys, *reward)
    assert first["computed"] and not again["computed"] and again["key"] == first["key"]
    trained = omni(
        capsys,
        "rl",
        "--store",
        store,
        "train",
        "--policy",
        policy,
        "--rollout",
        sampled["key"],
        "--rewards",
        first["key"],
        "--loss",
        "agapo",
        "--micro-batch",
        2,
        "--checkpoint-every",
        1,
    )
    assert trained["computed"] and trained["steps"] == 2 and trained["resumed_from"] == 0
    new_policy = store / "policies" / trained["key"]
    assert (new_policy / "tokenizer.json").is_file()  # the folder stays complete
    assert (new_policy / "model.safetensors").is_file()


def test_pref_loop_from_the_command_line(tmp_path, model_folder, capsys):
    store = tmp_path / "store"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"text": "is it red?", "meta": {"answer": "yes"}}))
    policy = omni(capsys, "pref", "--store", store, "init", "--model", model_folder)["policy"]
    loop = (
        "pref",
        "--store",
        store,
        "loop",
        "--policy",
        policy,
        "--prompts",
        prompts,
        "--reward",
        "exact_match",
        "format=0.5",
        "--rounds",
        2,
        "--group-size",
        2,
        "--max-new-tokens",
        2,
        "--loss",
        "grouper",
    )
    rounds = omni(capsys, *loop)["rounds"]
    assert len(rounds) == 2 and rounds[1]["policy"] == rounds[0]["next_policy"]
    rerun = omni(capsys, *loop)["rounds"]
    assert not any(any(r["computed"].values()) for r in rerun)


def test_bad_command_line_input_is_reported(tmp_path, capsys):
    assert parse_reward_spec(["exact_match", "format=0.1"]) == {"exact_match": 1.0, "format": 0.1}
    with pytest.raises(ValueError, match="must be a number"):
        parse_reward_spec(["format=lots"])
    store = tmp_path / "store"
    assert main(["rl", "--store", str(store), "reward", "--rollout", "ab", "--reward", "nope"]) == 2
    assert "unknown reward 'nope'" in capsys.readouterr().err
    loop = ["pref", "--store", str(store), "loop", "--policy", "p", "--prompts", "none.jsonl"]
    assert main([*loop, "--reward", "exact_match", "--clip-range", "0.1", "0.1"]) == 2
    assert "'dpo' has no clipped ratio" in capsys.readouterr().err
