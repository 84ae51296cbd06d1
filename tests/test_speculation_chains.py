"""Chained MTP drafts (k = 1..4 per verification) and batched speculation: greedy output is
exactly plain greedy output, sampling keeps the main model's distribution, and the acceptance at
each draft depth is reported."""

import functools

import pytest
import torch

import omni.planning as planning
import omni.speculation as speculation
from omni.constraints import OutputConstraint
from omni.decoding import Decoder, Sampling
from omni.presets import build_micro_pipeline
from omni.speculation import SpeculationPolicy

CASES = [("text", "a big red circle", 40), ("image", "draw it", 80), ("audio", "say hi", 40)]


@pytest.fixture(scope="module", params=["micro-llama", "micro-hcx-omni", "micro-k-exaone"])
def pipe(request):
    return build_micro_pipeline(request.param)


def plain_tokens(pipe, prompt, modality, tokens):
    return pipe.generate(prompt, modality, max_new_tokens=tokens, steps=1, speculative=False).tokens


def never_pausing(monkeypatch):
    """Keep drafting whatever the acceptance, so every chain is verified and cropped."""
    policy = functools.partial(SpeculationPolicy, min_acceptance=0.0)
    monkeypatch.setattr(planning, "SpeculationPolicy", policy)


def drafting_from(monkeypatch, pick):
    """The MTP draft replaced by ``pick(row, index of the drafted token)``."""
    monkeypatch.setattr(
        speculation, "_draft", lambda _d, _logits, answer, row: (pick(row, len(answer)), None)
    )


@pytest.mark.parametrize("modality, prompt, tokens", CASES)
@pytest.mark.parametrize("draft_tokens", [1, 2, 3, 4])
def test_chained_greedy_drafts_of_the_mtp_module_give_plain_greedy_output(
    monkeypatch, pipe, modality, prompt, tokens, draft_tokens
):
    never_pausing(monkeypatch)
    plain = plain_tokens(pipe, prompt, modality, tokens)
    fast = pipe.generate(
        prompt, modality, max_new_tokens=tokens, steps=1, draft_tokens=draft_tokens
    )
    assert fast.tokens == plain
    assert fast.usage["drafts_by_depth"][draft_tokens - 1] > 0
    assert sum(fast.usage["drafts_by_depth"]) == fast.usage["drafts"]


@pytest.mark.parametrize("draft_tokens", [2, 4])
def test_partly_right_chains_are_cropped_to_the_accepted_drafts(monkeypatch, pipe, draft_tokens):
    never_pausing(monkeypatch)
    prompt, tokens = "a big red circle", 40
    plain = plain_tokens(pipe, prompt, "text", tokens)
    pad = pipe.layout.special_id("<|pad|>")
    # Two tokens in every seven are drafted wrong, so chains stop at different depths.
    drafting_from(monkeypatch, lambda _row, i: pad if i % 7 in (2, 5) else plain[i])
    fast = pipe.generate(prompt, max_new_tokens=tokens, draft_tokens=draft_tokens)
    assert fast.tokens == plain
    assert 0 < fast.usage["accepted_drafts"] < fast.usage["drafts"]
    assert fast.usage["forwards"] < len(plain)


def test_acceptance_is_reported_at_each_draft_depth(monkeypatch):
    pipe = build_micro_pipeline("micro-llama")
    plain = plain_tokens(pipe, "hello", "text", 40)
    pad = pipe.layout.special_id("<|pad|>")
    # Depth 1 and 2 always right, depth 3 never: chains of 3 keep 2 drafts and the fix.
    drafting_from(monkeypatch, lambda _row, i: plain[i] if i % 3 else pad)
    fast = pipe.generate("hello", max_new_tokens=40, draft_tokens=3)
    assert fast.tokens == plain
    rates = fast.usage["acceptance_by_depth"]
    assert rates[:3] == [1.0, 1.0, 0.0] and rates[3] is None
    assert fast.usage["forwards"] == 1 + 39 // 3  # the prefill, then 3 tokens per forward


def test_adaptive_depth_deepens_while_chains_are_accepted(monkeypatch):
    pipe = build_micro_pipeline("micro-llama")
    plain = plain_tokens(pipe, "hello", "text", 60)
    drafting_from(monkeypatch, lambda _row, i: plain[i])
    fast = pipe.generate("hello", max_new_tokens=60)
    assert fast.tokens == plain
    assert fast.usage["drafts_by_depth"][3] > 0 and fast.usage["acceptance_by_depth"][3] == 1.0


def test_the_policy_keeps_the_chain_short_where_deep_drafts_fail():
    policy = SpeculationPolicy()
    assert policy.draft_depth() == 1  # nothing measured yet
    for _ in range(6):
        policy.record(4, 4)
    assert policy.draft_depth() == 4
    for _ in range(24):
        policy.record(1, 4)  # the first draft is accepted, the second never
    assert policy.draft_depth() == 1
    assert SpeculationPolicy(depth=3).draft_depth() == 3


REQUESTS = ["hello", "a big red circle on the left of the canvas", "왼쪽에 큰 빨간 원", "star"]


@pytest.mark.parametrize("draft_tokens", [None, 1, 3])
def test_batched_speculative_greedy_equals_one_at_a_time(monkeypatch, pipe, draft_tokens):
    never_pausing(monkeypatch)
    single = [plain_tokens(pipe, r, "text", 24) for r in REQUESTS]
    pad = pipe.layout.special_id("<|pad|>")
    # Each row is drafted wrong at its own places, so rows accept different numbers of drafts.
    drafting_from(monkeypatch, lambda row, i: pad if (i + row) % (row + 2) == 0 else single[row][i])
    batched = pipe.generate_batch(REQUESTS, max_new_tokens=24, draft_tokens=draft_tokens)
    assert [r.tokens for r in batched] == single
    assert batched[0].usage["accepted_drafts"] > 0
    assert batched[0].usage["forwards"] < 24


def test_each_row_of_a_padded_batch_drafts_first_as_it_does_alone(monkeypatch, pipe):
    """The first chain of a left-padded row continues from its prompt's last position, not
    from a padding column (which cost most rows of a batch their drafts)."""
    never_pausing(monkeypatch)
    real, first = speculation._draft, {}

    def spy(decoder, logits, answer, row):
        token, q = real(decoder, logits, answer, row)
        if len(answer) == 1:  # the draft after each row's first token
            first.setdefault(row, token)
        return token, q

    monkeypatch.setattr(speculation, "_draft", spy)
    alone = []
    for request in REQUESTS:
        first.clear()
        pipe.generate(request, max_new_tokens=8, draft_tokens=1)
        alone.append(first[0])
    first.clear()
    pipe.generate_batch(REQUESTS, max_new_tokens=8, draft_tokens=1)
    assert [first[row] for row in range(len(REQUESTS))] == alone


def test_batched_speculation_with_the_mtp_drafts(pipe):
    single = [plain_tokens(pipe, r, "image", 80) for r in REQUESTS[:3]]
    batched = pipe.generate_batch(REQUESTS[:3], "image", max_new_tokens=80, steps=1)
    assert [r.tokens for r in batched] == single and batched[0].usage["drafts"] > 0


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(draft_tokens=0), "draft_tokens must be at least 1"),
        (dict(draft_tokens=5), "draft_tokens must be at most 4"),
        (dict(draft_tokens=2.0), "draft_tokens must be an integer"),
        (dict(draft_tokens=2, speculative=False), "draft_tokens needs speculative decoding"),
    ],
)
def test_bad_draft_tokens_are_value_errors(options, message):
    pipe = build_micro_pipeline("micro-llama")
    with pytest.raises(ValueError, match=message):
        pipe.generate("hi", max_new_tokens=4, **options)


def test_chained_speculative_sampling_keeps_the_main_models_distribution():
    """Four tokens with fixed main (p) and draft (q) distributions at each position: the pairs
    the chained acceptance rule emits must follow p x p, however far q is from p."""
    pipe = build_micro_pipeline("micro-llama")
    vocab = pipe.model.get_output_embeddings().out_features
    tokens = torch.tensor([10, 11, 12, 13])
    p = torch.tensor([0.1, 0.2, 0.3, 0.4])
    q = torch.tensor([0.55, 0.05, 0.3, 0.1])

    def logits(dist, rows):
        out = torch.full((rows, vocab), float("-inf"))
        out[:, tokens] = dist.log()
        return out

    constraint = OutputConstraint(pipe.layout, "text")
    decoder = Decoder(pipe.model, [constraint], Sampling(temperature=1.0, seed=0), 8)
    counts = torch.zeros(4, 4)
    samples = 6000
    for _ in range(samples):
        decoder.answers = [[]]
        emitted: list[int] = []
        while len(emitted) < 2:  # chains of 2 drafts until two tokens are out
            chain, qs = [], []
            for _depth in range(2):
                token, dist = speculation._draft(decoder, logits(q, 1)[0], emitted + chain, 0)
                chain.append(token)
                qs.append(dist)
            decoder.answers = [list(emitted)]
            accepted, fix = speculation._verify_chain(decoder, logits(p, 3), 0, chain, qs)
            emitted += chain[:accepted] + [fix]
        first, second = (int((tokens == t).nonzero()) for t in emitted[:2])
        counts[first, second] += 1
    observed = counts / samples
    total_variation = 0.5 * float((observed - torch.outer(p, p)).abs().sum())
    assert total_variation < 0.035
    # The same draws accepted blindly would follow q: the test can tell the two apart.
    assert 0.5 * float((torch.outer(q, q) - torch.outer(p, p)).abs().sum()) > 0.3
