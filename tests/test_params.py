"""Reference configurations: parameter counts on the meta device match the published totals."""

import json

import pytest

from omni.cli import main
from omni.presets import count_parameters


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


def test_params_cli_prints_json(capsys):
    assert main(["params", "solar-open-102b-a12b", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_type"] == "solar_open" and data["total_b"] == pytest.approx(102.65, abs=0.01)


def test_unknown_name_is_a_clear_error(capsys):
    assert main(["params", "gpt-5"]) == 2
    assert "unknown configuration 'gpt-5'" in capsys.readouterr().err
