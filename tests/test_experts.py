"""One switch for how an MoE backbone runs its experts, over the backbone and the MTP block."""

import pytest

import omni
from omni.experts import EXPERTS_IMPLEMENTATIONS, experts_implementation, use_experts
from omni.presets import build_micro_pipeline


@pytest.fixture(scope="module")
def moe():
    return build_micro_pipeline("micro-k-exaone")


def test_every_experts_implementation_gives_the_same_greedy_answer(moe):
    answers = {}
    for implementation in EXPERTS_IMPLEMENTATIONS:
        use_experts(moe.model, implementation)
        assert experts_implementation(moe.model) == implementation
        assert moe.model.mtp.block.config._experts_implementation == implementation
        answers[implementation] = moe.generate("a big red circle", max_new_tokens=12).tokens
    use_experts(moe.model, "grouped_mm")
    assert len({tuple(a) for a in answers.values()}) == 1


def test_a_dense_model_has_no_experts_to_switch():
    dense = build_micro_pipeline("micro-llama")
    use_experts(dense.model, "eager")
    assert experts_implementation(dense.model) is None


def test_load_takes_the_experts_implementation(moe, tmp_path):
    moe.save_pretrained(tmp_path)
    loaded = omni.load(tmp_path, experts="batched_mm")
    assert experts_implementation(loaded.model) == "batched_mm"
    assert experts_implementation(omni.load(tmp_path).model) == "grouped_mm"  # transformers'
    with pytest.raises(ValueError, match="experts must be one of eager, batched_mm"):
        omni.load(tmp_path, experts="fast")
