"""Reference configurations: parameter counts on the meta device match the published totals."""

import json

import pytest

from omni.cli import main
from omni.param_count import count_omni_parameters
from omni.presets import build_micro, count_parameters, vocab_layout


@pytest.mark.parametrize(
    "name,total,active",
    [("k-exaone-236b-a23b", 236e9, 23e9), ("solar-open-102b-a12b", 102.6e9, 12e9)],
)
def test_published_totals_within_one_percent(name, total, active):
    count = count_parameters(name)
    assert abs(count.total - total) / total < 0.01
    assert abs(count.active - active) / active < 0.03  # model cards round active to 23B / 12B


def test_hcx_omni_is_a_dense_8b(capsys):
    count = count_parameters("hcx-omni-8b")
    assert count.total == count.active and 7.5e9 < count.total < 9e9


def test_params_cli_prints_the_whole_omni_model_as_json(capsys):
    assert main(["params", "solar-open-102b-a12b", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_type"] == "solar_open"
    assert data["backbone"] == count_parameters("solar-open-102b-a12b").total  # 102.65B
    parts = data["backbone"] + data["code_rows"] + sum(data["encoders"].values())
    assert data["total"] == parts + data["projectors"] + data["mtp"]
    assert set(data["encoders"]) == {"image", "audio"} and data["total_b"] > 103


@pytest.mark.parametrize("name", ["micro-llama", "micro-k-exaone"])
def test_the_omni_count_equals_the_parameters_of_the_built_micro_model(name):
    model, _ = build_micro(name)
    count = count_omni_parameters(name)
    assert count.total == sum(p.numel() for p in model.parameters())
    assert count.mtp == sum(p.numel() for p in model.mtp.parameters())
    assert count.projectors == sum(
        p.numel() for n, p in model.named_parameters() if ".projector." in n
    )


def test_code_rows_are_the_appended_rows_of_embedding_and_head():
    count = count_omni_parameters("hcx-omni-8b", encoders="none")
    layout = vocab_layout("hcx-omni-8b")
    appended = layout.total_size - layout.text_size  # 65,536 image + 6,561 audio codes + specials
    assert count.code_rows == 2 * appended * 4096 and count.encoders == {}
    assert count.backbone == count_parameters("hcx-omni-8b").total


def test_unknown_name_is_a_clear_error(capsys):
    assert main(["params", "gpt-5"]) == 2
    assert "unknown configuration 'gpt-5'" in capsys.readouterr().err
