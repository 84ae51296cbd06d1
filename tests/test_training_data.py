"""Training data: manifest checking, mixtures, the discrete-target cache and packed rows."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from omni.presets import build_micro
from training.data import (
    CodeCache,
    DataSpec,
    Manifest,
    MixtureSampler,
    RowPacker,
    tokenizer_version,
)

TASKS = ["caption", "draw", "vqa", "translate"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from training.toyworld import generate

    return generate(tmp_path_factory.mktemp("world"), 48, seed=3, tasks=TASKS, progress=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return CodeCache(tmp_path_factory.mktemp("codes"), {"image": CountingTokenizer()})


@pytest.fixture(scope="module")
def micro():
    return build_micro("micro-llama")


class CountingTokenizer:
    """A real micro image tokenizer that counts how often it is asked to encode."""

    def __init__(self) -> None:
        from tokenizers_mm.vision import SemanticImageTokenizer

        torch.manual_seed(0)
        self.inner = SemanticImageTokenizer(grid=8, codebook_size=256)
        self.calls = 0

    def encode(self, signal):
        self.calls += 1
        return self.inner.encode(signal)

    def to_config(self):
        return self.inner.to_config()

    def state_dict(self):
        return self.inner.state_dict()


def test_bad_lines_are_reported_with_file_and_line_then_skipped(world, tmp_path, caplog):
    lines = world.read_text().splitlines()[:3]
    broken = json.loads(lines[1])
    broken["turns"][1]["segments"][0] = {"type": "image", "path": "media/nowhere.png"}
    unknown = json.loads(lines[2])
    unknown["turns"][1]["segments"].append({"type": "smell", "text": "roses"})
    manifest = world.parent / "bad.jsonl"
    manifest.write_text("\n".join([lines[0], json.dumps(broken), json.dumps(unknown)]) + "\n")

    source = Manifest(manifest, split=None)
    assert len(source) == 1
    assert [(i.line, "nowhere.png" in i.reason) for i in source.issues] == [(2, True), (3, False)]
    assert "unknown segment type 'smell'" in source.issues[1].reason
    assert f"{manifest}:2: missing media file" in caplog.text
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: missing media file .*nowhere\.png"):
        Manifest(manifest, split=None, on_error="raise")


def test_mixture_follows_weights_and_resumes_from_its_state():
    sampler = MixtureSampler([5, 7], [3.0, 1.0], seed=1)
    draws = [next(sampler) for _ in range(400)]
    share = Counter(source for source, _ in draws)[0] / len(draws)
    assert 0.68 < share < 0.82
    first_epoch = [index for source, index in draws if source == 0][:5]
    assert sorted(first_epoch) == list(range(5))  # a permutation per epoch: no repeats

    sampler = MixtureSampler([5, 7], [3.0, 1.0], seed=1)
    for _ in range(123):
        next(sampler)
    state = json.loads(json.dumps(sampler.state_dict()))
    expected = [next(sampler) for _ in range(50)]
    resumed = MixtureSampler([5, 7], [3.0, 1.0], seed=0)
    resumed.load_state_dict(state)
    assert [next(resumed) for _ in range(50)] == expected


def test_discrete_targets_are_tokenised_once_and_keyed_by_tokenizer_version(world, tmp_path):
    source = Manifest(world, tasks=["draw"])
    tokenizer = CountingTokenizer()
    cache = CodeCache(tmp_path / "cache", {"image": tokenizer})
    first = cache.fill(source[0])
    again = CodeCache(tmp_path / "cache", {"image": tokenizer}).fill(source[0])
    codes = first.turns[-1].segments[0].codes
    assert tokenizer.calls == 1 and codes.shape == (8, 8)
    assert torch.equal(codes, again.turns[-1].segments[0].codes)
    assert source[0].turns[-1].segments[0].codes is None  # the manifest sample is untouched

    version = tokenizer_version(tokenizer)
    with torch.no_grad():
        next(tokenizer.inner.down.parameters()).add_(1.0)
    assert tokenizer_version(tokenizer) != version
    CodeCache(tmp_path / "cache", {"image": tokenizer}).fill(source[0])
    assert tokenizer.calls == 2  # new weights, new cache entry

    CodeCache(tmp_path / "cache", {"image": tokenizer}).fill(first)
    assert tokenizer.calls == 2  # precomputed codes are never re-tokenised


def test_packed_rows_are_full_and_keep_samples_apart(world, micro, cache):
    _, processor = micro
    spec = DataSpec([Manifest(world)], [1.0], row_length=512, lookahead=32, cache=cache)
    packer = RowPacker(spec, processor)
    packer.next_batch(3)
    batch = packer.next_batch(3)
    assert batch.input_ids.shape == (3, 512) and batch.attention_mask is None
    assert packer.packing_ratio >= 0.95
    starts = (batch.position_ids == 0).sum(1)
    assert (starts >= 2).all()  # several samples per row, positions restart for each
    image_slots = batch.input_ids == processor.layout.special_id("<|image_pad|>")
    assert int(image_slots.sum()) == 4 * len(batch.media["image"]) > 0


def test_packer_state_resumes_to_the_same_rows(world, micro, cache):
    _, processor = micro

    def packer():
        spec = DataSpec([Manifest(world)], [1.0], 192, seed=5, lookahead=8, cache=cache)
        return RowPacker(spec, processor)

    first = packer()
    first.next_batch(2)
    state = json.loads(json.dumps(first.state_dict()))
    expected = first.next_batch(2)
    resumed = packer()
    resumed.load_state_dict(state)
    got = resumed.next_batch(2)
    assert torch.equal(got.input_ids, expected.input_ids)
    assert torch.equal(got.labels, expected.labels)
