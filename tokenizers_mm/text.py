"""Text tokenizers: byte-level BPE (Solar Open style) and SuperBPE (K-EXAONE style).

Both produce a ``transformers.PreTrainedTokenizerFast`` backed by one ``tokenizer.json``, so a
saved folder loads with ``AutoTokenizer.from_pretrained(folder)``.

- BPE: byte-level, every digit its own token, whitespace kept byte-exactly (runs of spaces,
  tabs and newlines become tokens of their own, so indented code round-trips).
- SuperBPE: stage 1 is that BPE up to a transition vocabulary size; stage 2 keeps merging with
  whitespace no longer a boundary (only digits, newlines and sentence ends are), so frequent
  word sequences (" of the", " 수 있습니다.") become single superword tokens.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|pad|>")

# GPT-4 / Solar Open style split, but with single digits (\p{N} instead of \p{N}{1,3}):
# contractions, letters with one leading non-letter (" word", "\tword"), single digits,
# punctuation runs, newline runs with their indentation, and space runs that keep the last
# space for the following word.
WORD_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# SuperBPE stage 2 chunks. Whitespace is no longer a boundary; single digits and newline runs
# (with the spaces around them) are chunks of their own, and a sentence ends after its final
# punctuation where whitespace follows (CJK full stops always end one): "합니다." and " the data."
# can become tokens, ". The" cannot. Everything between, spaces included, is merged over.
SUPERWORD_BOUNDARY_PATTERN = r"\p{N}|[^\S\r\n]*[\r\n]+[^\S\r\n]*"
SENTENCE_END_PATTERN = r"[.!?]+(?=\s)|[。！？]+"

_MICRO_CORPUS = Path(__file__).with_name("micro_corpus.json")


def _pre_tokenizer(pattern: str, sentences: bool = False) -> pre_tokenizers.PreTokenizer:
    steps = [pre_tokenizers.Split(Regex(pattern), behavior="isolated")]
    if sentences:  # the sentence's final punctuation stays with it, the next sentence starts anew
        steps.append(pre_tokenizers.Split(Regex(SENTENCE_END_PATTERN), "merged_with_previous"))
    steps += [
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ]
    return pre_tokenizers.Sequence(steps)


def _check_vocab_size(vocab_size: int, special_tokens: Sequence[str]) -> None:
    floor = len(pre_tokenizers.ByteLevel.alphabet()) + len(special_tokens)
    if vocab_size <= floor:
        raise ValueError(
            f"vocab_size {vocab_size} is too small: the byte alphabet and special tokens "
            f"already take {floor} entries"
        )


def _wrap(tokenizer: Tokenizer, special_tokens: Sequence[str]) -> PreTrainedTokenizerFast:
    """A transformers tokenizer that never rewrites spaces on decode (byte-exact round trip)."""
    specials = list(special_tokens)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=specials[0] if specials else None,
        pad_token=specials[1] if len(specials) > 1 else None,
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 30,
    )


def _train_stage1(
    texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str], show_progress: bool
) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(ignore_merges=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(WORD_PATTERN)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE with single-digit tokens and byte-exact whitespace."""
    _check_vocab_size(vocab_size, special_tokens)
    return _wrap(_train_stage1(texts, vocab_size, special_tokens, show_progress), special_tokens)


def train_superbpe(
    texts: Iterable[str],
    vocab_size: int,
    transition_vocab_size: int | None = None,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train SuperBPE: BPE up to ``transition_vocab_size``, then superword merges across spaces
    up to ``vocab_size``. The default transition, 75% of ``vocab_size``, makes about 20% of the
    vocabulary superwords; an earlier transition gives more superwords and a little more
    compression, a later one (the SuperBPE paper's 90%, chosen there for downstream accuracy)
    fewer (``benchmarks/bench_superbpe.py`` sweeps it).
    """
    if transition_vocab_size is None:
        transition_vocab_size = int(0.75 * vocab_size)
    if not 0 < transition_vocab_size <= vocab_size:
        raise ValueError(
            f"transition_vocab_size must be in (0, vocab_size={vocab_size}], "
            f"got {transition_vocab_size}"
        )
    _check_vocab_size(transition_vocab_size, special_tokens)
    texts = list(texts)
    stage1 = _train_stage1(texts, transition_vocab_size, special_tokens, show_progress)
    chunked = Tokenizer.from_str(stage1.to_str())
    chunked.pre_tokenizer = _pre_tokenizer(SUPERWORD_BOUNDARY_PATTERN, sentences=True)
    spec = json.loads(chunked.to_str())
    chunk_counts: Counter[str] = Counter()
    for text in texts:
        chunk_counts.update(piece for piece, _ in chunked.pre_tokenizer.pre_tokenize_str(text))
    words = [([t.value for t in chunked.model.tokenize(c)], n) for c, n in chunk_counts.items()]
    vocab = spec["model"]["vocab"]
    new_merges = _learn_superword_merges(words, set(vocab), vocab_size - len(vocab), show_progress)
    for left, right in new_merges:
        vocab[left + right] = len(vocab)
    spec["model"]["merges"] = [list(m) for m in spec["model"]["merges"]] + [
        [left, right] for left, right in new_merges
    ]
    return _wrap(Tokenizer.from_str(json.dumps(spec)), special_tokens)


def _learn_superword_merges(
    words: list[tuple[list[str], int]], known: set[str], budget: int, show_progress: bool
) -> list[tuple[str, str]]:
    """SuperBPE stage 2, written here because ``tokenizers`` cannot resume training from given
    merges: greedy BPE over the stage-1 token sequences of whole chunks, with incremental pair
    counts and a lazy max-heap. Merges whose result already is a token are skipped, so every new
    merge makes a new token and applying all merges by rank reproduces this exact sequence.
    """
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for index, (tokens, count) in enumerate(words):
        for pair in zip(tokens, tokens[1:]):
            pair_counts[pair] += count
            where[pair].add(index)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    with tqdm(total=budget, desc="superword merges", disable=not show_progress) as bar:
        while heap and len(merges) < budget:
            negative, pair = heapq.heappop(heap)
            if pair_counts.get(pair, 0) != -negative:
                continue  # stale entry: its count changed since it was pushed
            if -negative < 2:
                break
            merged = pair[0] + pair[1]
            if merged in known:
                continue
            known.add(merged)
            merges.append(pair)
            bar.update()
            changed: set[tuple[str, str]] = set()
            for index in where.pop(pair):
                tokens, count = words[index]
                for old in zip(tokens, tokens[1:]):
                    pair_counts[old] -= count
                    changed.add(old)
                tokens = _merge_pair(tokens, pair, merged)
                words[index] = (tokens, count)
                for new in zip(tokens, tokens[1:]):
                    pair_counts[new] += count
                    where[new].add(index)
                    changed.add(new)
            pair_counts.pop(pair, None)
            for p in changed:
                if pair_counts.get(p, 0) > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
    return merges


def _merge_pair(tokens: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    """Left-to-right, non-overlapping replacement, as BPE applies a merge within a word."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i] == pair[0] and tokens[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def is_superword(token: str) -> bool:
    """True when a (byte-level) token bridges whitespace: some whitespace between two
    non-space characters, as in " of the" or "할 수" (never true for a BPE token)."""
    return _BRIDGED_SPACE.search(_BYTE_LEVEL.decode([token])) is not None


_BYTE_LEVEL = decoders.ByteLevel()
_BRIDGED_SPACE = re.compile(r"\S[^\S\r\n]+\S")


def superword_share(tokenizer: PreTrainedTokenizerFast) -> float:
    """Fraction of the vocabulary that are superword tokens."""
    vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=False)
    return sum(is_superword(token) for token in vocab) / len(vocab)


def bytes_per_token(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str]) -> float:
    """UTF-8 bytes per token over ``texts`` (higher is a more efficient encoding)."""
    total_bytes = total_tokens = 0
    for text in texts:
        total_bytes += len(text.encode("utf-8"))
        total_tokens += len(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False))
    if total_tokens == 0:
        raise ValueError("bytes_per_token needs at least one non-empty text")
    return total_bytes / total_tokens


def micro_corpus() -> list[str]:
    """The small built-in bilingual corpus (English, Korean, a little Python) for micro models."""
    corpus = json.loads(_MICRO_CORPUS.read_text(encoding="utf-8"))
    return corpus["english"] + corpus["korean"] + corpus["code"]


@lru_cache(maxsize=4)
def _micro_tokenizer_json(vocab_size: int) -> str:
    return train_bpe(micro_corpus(), vocab_size).backend_tokenizer.to_str()


def micro_text_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A deterministic byte-level BPE trained in well under a second on the built-in corpus;
    the text tokenizer of every micro model. Returns a fresh object on every call."""
    return _wrap(Tokenizer.from_str(_micro_tokenizer_json(vocab_size)), DEFAULT_SPECIAL_TOKENS)
