"""Adaptive MTP speculation: drafting pauses while drafts are rejected, resumes when they pay,
and greedy output stays exactly plain greedy output."""

import pytest

import omni.speculation as speculation
from omni.presets import build_micro_pipeline
from omni.speculation import SpeculationPolicy

PROMPT, TOKENS = "a big red circle on the left", 60


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


@pytest.fixture(autouse=True)
def fresh_policies(pipe):
    """Each test starts with no acceptance history (it carries over requests otherwise)."""
    pipe.speculation.clear()


@pytest.fixture(scope="module")
def plain(pipe):
    result = pipe.generate(PROMPT, max_new_tokens=TOKENS, speculative=False)
    assert len(result.tokens) == TOKENS  # the random model never ends its turn early here
    return result


def drafting_with(monkeypatch, pipe, pick):
    """Replace the MTP draft by ``pick(index of the drafted token)``; count MTP steps."""
    monkeypatch.setattr(
        speculation, "_draft", lambda _d, _logits, answer, _row: (pick(len(answer)), None)
    )
    steps = []
    original = pipe.model.mtp.forward
    monkeypatch.setattr(
        pipe.model.mtp, "forward", lambda *a, **k: steps.append(1) or original(*a, **k)
    )
    return steps


def test_the_policy_pauses_after_a_window_of_rejections_and_probes_less_often():
    policy = SpeculationPolicy(window=4, min_acceptance=0.25, probe_every=3, max_probe_every=6)
    for _ in range(4):
        assert policy.should_draft()
        policy.record(False)
    gaps = []
    for _ in range(3):
        skipped = 0
        while not policy.should_draft():
            policy.skip()
            skipped += 1
        gaps.append(skipped)
        policy.record(False)
    assert gaps == [3, 6, 6]


def test_the_policy_resumes_when_probes_are_accepted_and_keeps_drafting_while_they_pay():
    policy = SpeculationPolicy(window=4, min_acceptance=0.5, probe_every=2)
    for _ in range(4):
        policy.record(False)
    probes = 0
    while not policy.drafting:
        while not policy.should_draft():
            policy.skip()
        policy.record(True)
        probes += 1
    assert probes == 2  # two accepted of the last four reach 0.5
    for _ in range(20):
        assert policy.should_draft()
        policy.record(True)


def test_drafts_that_are_never_accepted_stop_after_a_window(monkeypatch, pipe, plain):
    pad = pipe.layout.special_id("<|pad|>")  # masked out, so never the model's choice
    mtp_steps = drafting_with(monkeypatch, pipe, lambda _index: pad)
    result = pipe.generate(PROMPT, max_new_tokens=TOKENS, speculative=True)
    assert result.tokens == plain.tokens
    # A window of drafts, then probes after 16 and 32 more plain steps: 60 tokens hold no more.
    assert result.usage["drafts"] == SpeculationPolicy.window + 2
    assert result.usage["accepted_drafts"] == 0 and len(mtp_steps) == result.usage["drafts"]
    assert result.usage["paused_draft_steps"] == TOKENS - 1 - result.usage["drafts"]
    assert result.usage["forwards"] == plain.usage["forwards"]


def test_drafts_that_are_accepted_keep_drafting(monkeypatch, pipe, plain):
    drafting_with(monkeypatch, pipe, lambda index: plain.tokens[index])
    result = pipe.generate(PROMPT, max_new_tokens=TOKENS, speculative=True)
    assert result.tokens == plain.tokens
    assert result.usage["paused_draft_steps"] == 0
    assert result.usage["accepted_drafts"] == result.usage["drafts"] >= TOKENS // 2 - 1
    assert result.usage["forwards"] <= TOKENS // 2 + 2


def test_drafting_resumes_when_acceptance_rises(monkeypatch, pipe, plain):
    pad = pipe.layout.special_id("<|pad|>")
    # Rejected for the first 8 tokens, then the drafts are right.
    drafting_with(monkeypatch, pipe, lambda index: pad if index < 8 else plain.tokens[index])
    result = pipe.generate(PROMPT, max_new_tokens=TOKENS, speculative=True)
    assert result.tokens == plain.tokens
    assert result.usage["accepted_drafts"] > TOKENS // 4
    assert result.usage["paused_draft_steps"] <= 3 * SpeculationPolicy.probe_every


def test_acceptance_carries_over_requests_so_a_new_one_starts_paused(monkeypatch, pipe, plain):
    pad = pipe.layout.special_id("<|pad|>")
    drafting_with(monkeypatch, pipe, lambda _index: pad)
    first = pipe.generate(PROMPT, max_new_tokens=TOKENS, speculative=True)
    second = pipe.generate(PROMPT, max_new_tokens=TOKENS, speculative=True)
    assert first.tokens == second.tokens == plain.tokens
    assert first.usage["drafts"] == SpeculationPolicy.window + 2
    # No new window of drafts: at most one probe (the gap is 64 steps after the first's two).
    assert second.usage["drafts"] <= 1
    assert second.usage["paused_draft_steps"] >= TOKENS - 2
    text_only = pipe.speculation["text"]
    assert not text_only.drafting and set(pipe.speculation) == {"text"}


def test_a_seeded_request_starts_with_a_fresh_policy_so_its_sample_reproduces(pipe):
    first = pipe.generate(PROMPT, max_new_tokens=TOKENS, temperature=1.0, seed=3)
    pipe.speculation["text"] = paused = SpeculationPolicy()
    for _ in range(paused.window):
        paused.record(False)
    again = pipe.generate(PROMPT, max_new_tokens=TOKENS, temperature=1.0, seed=3)
    assert again.tokens == first.tokens and again.usage["drafts"] == first.usage["drafts"]


def test_a_model_saves_and_reloads_after_speculative_decoding(pipe, tmp_path):
    """The hook that records hidden states for the drafts adds no weights to the model."""
    import omni

    spoken = pipe.generate("hello", max_new_tokens=6, speculative=True)
    assert spoken.usage["drafts"] > 0
    pipe.save_pretrained(tmp_path)
    assert not [name for name in pipe.model.state_dict() if "hooked" in name]
    again = omni.load(tmp_path)
    assert again.generate("hello", max_new_tokens=6, speculative=False).tokens == spoken.tokens
