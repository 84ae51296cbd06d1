"""Byte-level BPE and SuperBPE text tokenizers: digits, whitespace, superwords, save/load."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from tokenizers_mm.text import (
    bytes_per_token,
    is_superword,
    micro_corpus,
    micro_text_tokenizer,
    superword_share,
    train_bpe,
    train_superbpe,
)

SNIPPET = (
    "import os\n"
    "\n"
    "\n"
    "class Shape:  \n"
    '    """A shape;\ttabs\tinside."""\n'
    "\n"
    "    def area(self, width: int = 12, height: int = 3) -> int:\n"
    "\tif width > 100:   \n"
    "\t\treturn 0\n"
    "        return width * height   # trailing spaces follow   \n"
    "\n\n\n"
    "x = [1,  2,   3]\r\n"
    "    \n"
    "  \t  \n"
)

# A corpus where the same phrases recur, so stage 2 has superwords worth learning.
PHRASES = [
    "the red circle is above the blue square. ",
    "the red circle is next to the green triangle. ",
    "빨간 원이 파란 사각형 위에 있습니다. ",
    "of the model and the data. ",
]


@pytest.fixture(scope="module")
def bpe() -> PreTrainedTokenizerFast:
    return train_bpe(micro_corpus() + PHRASES * 10, vocab_size=600)


@pytest.fixture(scope="module")
def superbpe() -> PreTrainedTokenizerFast:
    return train_superbpe(micro_corpus() + PHRASES * 10, vocab_size=600, transition_vocab_size=480)


@pytest.fixture(params=["bpe", "superbpe"])
def tokenizer(request, bpe, superbpe) -> PreTrainedTokenizerFast:
    return {"bpe": bpe, "superbpe": superbpe}[request.param]


def test_indented_python_snippet_round_trips_byte_exactly(tokenizer):
    ids = tokenizer.encode(SNIPPET)
    assert tokenizer.decode(ids) == SNIPPET
    assert tokenizer.backend_tokenizer.decode(ids, skip_special_tokens=False) == SNIPPET


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=80))
def test_any_unicode_text_round_trips(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet="0123456789 abc.,\n원이", max_size=60))
def test_every_digit_is_its_own_token(tokenizer, text):
    pieces = [tokenizer.decode([i]) for i in tokenizer.encode(text)]
    for piece in pieces:
        if re.search(r"[0-9]", piece):
            assert len(piece) == 1, piece
    assert sum(len(re.findall(r"[0-9]", p)) for p in pieces) == len(re.findall(r"[0-9]", text))


def test_whitespace_runs_stay_whole_in_bpe(bpe):
    pieces = [bpe.decode([i]) for i in bpe.encode("a\n\n\n        b")]
    assert "".join(pieces) == "a\n\n\n        b"
    assert any(piece.strip() == "" and len(piece) > 1 for piece in pieces)


def test_bpe_has_no_superwords_and_superbpe_does(bpe, superbpe):
    assert superword_share(bpe) == 0.0
    share = superword_share(superbpe)
    assert 0.0 < share <= 120 / 600
    assert len(superbpe) == len(bpe) == 600


def test_superbpe_encodes_frequent_phrases_in_fewer_tokens(bpe, superbpe):
    phrase = "the red circle is above the blue square."
    super_pieces = [superbpe.decode([i]) for i in superbpe.encode(phrase)]
    assert len(super_pieces) < len(bpe.encode(phrase))
    assert any(" " in piece.strip() for piece in super_pieces)
    assert bytes_per_token(superbpe, PHRASES) > bytes_per_token(bpe, PHRASES)


def _stage2_tokens(tokenizer: PreTrainedTokenizerFast, transition: int) -> list[str]:
    """The tokens stage 2 added (ids from the transition on), as text."""
    vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=False)
    decoder = tokenizer.backend_tokenizer.decoder
    return [decoder.decode([t]) for t, i in vocab.items() if i >= transition]


def test_superwords_never_cross_sentence_ends_newlines_or_digits(superbpe):
    added = _stage2_tokens(superbpe, 480)
    assert len(added) == 120
    assert any(is_superword_text(t) for t in added)
    for token in added:
        assert not re.search(r"[.!?]\s", token), token  # ". The" would cross a sentence end
        assert not re.search(r"\S[\r\n]|[\r\n][^\s]", token), token
        assert not re.search(r"[0-9]", token), token
    text = "the red circle is above the blue square. the red circle is next to 7 things.\nof the"
    pieces = [superbpe.decode([i]) for i in superbpe.encode(text)]
    assert "".join(pieces) == text
    assert not any(re.search(r"[.!?]\s|\n\S", p) for p in pieces)


def test_sentence_final_punctuation_joins_its_sentence(superbpe, bpe):
    """Stage 2 may merge a sentence with its full stop ("있습니다."), which BPE never does."""
    added = _stage2_tokens(superbpe, 480)
    assert any(t.endswith("다.") for t in added), added
    sentence = "빨간 원이 파란 사각형 위에 있습니다."
    pieces = [superbpe.decode([i]) for i in superbpe.encode(sentence)]
    assert any(p.endswith("다.") and len(p) > 2 for p in pieces), pieces
    assert len(pieces) < len(bpe.encode(sentence))


def is_superword_text(text: str) -> bool:
    return re.search(r"\S[^\S\r\n]+\S", text) is not None


def _apply_merges_in_order(symbols: list[str], merges: list[list[str]]) -> list[str]:
    """BPE by definition: every merge in training order, left to right over the chunk."""
    for left, right in merges:
        i, out = 0, []
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                out.append(left + right)
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


def test_saved_superbpe_reproduces_the_learned_merge_sequence(superbpe):
    """The tokenizers library applies merges by rank; the hand-written stage 2 must give the
    same segmentation as applying stage-1 then stage-2 merges one after another."""
    spec = json.loads(superbpe.backend_tokenizer.to_str())
    merges = spec["model"]["merges"]
    backend = superbpe.backend_tokenizer
    for text in PHRASES + micro_corpus()[:10]:
        for chunk, _ in backend.pre_tokenizer.pre_tokenize_str(text):
            expected = _apply_merges_in_order(list(chunk), merges)
            assert [t.value for t in backend.model.tokenize(chunk)] == expected


def test_superword_detection():
    to_byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    encode = lambda s: to_byte_level.pre_tokenize_str(s)[0][0]  # noqa: E731
    assert is_superword(encode(" of the"))
    assert is_superword(encode("할 수"))
    assert not is_superword(encode(" word"))
    assert not is_superword(encode("\n    "))
    assert not is_superword(encode(".\n"))


@pytest.mark.parametrize("kind", ["bpe", "superbpe"])
def test_save_pretrained_round_trip_through_auto_tokenizer(kind, bpe, superbpe, tmp_path):
    tokenizer = {"bpe": bpe, "superbpe": superbpe}[kind]
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    assert (tmp_path / "tokenizer_config.json").is_file()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = SNIPPET + "빨간 원이 파란 사각형 위에 있습니다. the red circle is above 42"
    assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.decode(loaded.encode(text)) == text
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert PreTrainedTokenizerFast.from_pretrained(tmp_path).encode(text) == loaded.encode(text)


def test_micro_text_tokenizer_is_deterministic_with_exact_size():
    first, second = micro_text_tokenizer(), micro_text_tokenizer()
    assert len(first) == 512
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    assert first is not second
    assert first.eos_token == "<|endoftext|>" and first.pad_token == "<|pad|>"
    assert len(micro_text_tokenizer(300)) == 300


def test_special_tokens_are_single_ids(bpe):
    ids = bpe.encode("hello<|endoftext|>")
    assert ids[-1] == bpe.convert_tokens_to_ids("<|endoftext|>")


def test_too_small_vocab_is_a_value_error():
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(["abc"], vocab_size=100)
    with pytest.raises(ValueError, match="transition_vocab_size"):
        train_superbpe(["abc"], vocab_size=400, transition_vocab_size=500)


@pytest.mark.parametrize("kind", ["bpe", "superbpe"])
def test_cli_trains_and_saves_a_loadable_tokenizer(kind, tmp_path):
    from omni.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text("\n".join(micro_corpus()) + "".join(PHRASES * 5))
    (corpus / "notes.md").write_text("# Notes\n\nThe red circle is above the blue square.\n")
    out = tmp_path / kind
    argv = ["train", "tokenizer", "--kind", kind, "--data", str(corpus), "--out", str(out)]
    assert main([*argv, "--vocab-size", "400", "--transition-vocab-size", "350"]) == 0
    loaded = AutoTokenizer.from_pretrained(out)
    assert len(loaded) == 400
    assert loaded.decode(loaded.encode(SNIPPET)) == SNIPPET


def test_cli_reports_missing_text_data_as_an_error(tmp_path, capsys):
    from omni.cli import main

    argv = ["train", "tokenizer", "--kind", "bpe", "--data", str(tmp_path / "none.txt")]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
