"""SuperBPE vs BPE encoding efficiency at equal vocabulary size, on held-out English and Korean.

Text comes from what installed packages ship. English: package descriptions
(``*.dist-info/METADATA``) and docstrings; the held-out English is the docstrings of a package
never trained on (networkx), so no template or copied docstring leaks across. Korean: konlpy's
corpora (kolaw constitution, kobill bills); the held-out bills share no text with the training
ones (bills 1809890-93 are versions of one bill and all stay in training).

    .venv/bin/python benchmarks/bench_superbpe.py --vocab-size 65536 --transition 0.75
"""

from __future__ import annotations

import argparse
import ast
import site
import sys
import time
from pathlib import Path

from tokenizers_mm.text import bytes_per_token, superword_share, train_bpe, train_superbpe

# Packages whose docstrings are mostly prose. transformers and diffusers are left out: their
# "Copied from" docstrings repeat across files.
TRAIN_PACKAGES = ("torch", "numpy", "pandas", "sympy", "matplotlib", "gradio", "PIL", "tqdm")
HELD_OUT_PACKAGE = "networkx"
HELD_OUT_KOREAN = ("kobill/1809896.txt", "kobill/1809899.txt")


def _site_packages() -> Path:
    for folder in site.getsitepackages():
        if (Path(folder) / "konlpy").is_dir():
            return Path(folder)
    raise SystemExit("konlpy is not installed: the Korean corpus comes from its package data")


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    docs = (ast.get_docstring(n) for n in nodes)
    return [d for d in docs if d and len(d) >= 200]


def english_texts(
    root: Path, packages: tuple[str, ...], max_bytes: int, metadata: bool
) -> list[str]:
    """Package descriptions (optionally) then long docstrings, each docstring once."""
    texts: list[str] = []
    if metadata:
        for path in sorted(root.glob("*.dist-info/METADATA")):
            texts.append(path.read_text(encoding="utf-8", errors="replace").partition("\n\n")[2])
    seen: set[str] = set()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            fresh = [d for d in _docstrings(path) if d not in seen]
            seen.update(fresh)
            texts += fresh
    kept, total = [], 0
    for text in texts:
        if total >= max_bytes:
            break
        kept.append(text)
        total += len(text.encode("utf-8"))
    return kept


def korean_texts(root: Path) -> tuple[list[str], list[str]]:
    """(train, held-out) konlpy corpus documents."""
    corpus = root / "konlpy" / "data" / "corpus"
    train, test = [], []
    for path in sorted(corpus.rglob("*.txt")):
        held_out = str(path.relative_to(corpus)) in HELD_OUT_KOREAN
        (test if held_out else train).append(path.read_text(encoding="utf-8"))
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=65536)
    parser.add_argument("--transition", type=float, default=0.75, help="fraction of vocab")
    parser.add_argument("--english-bytes", type=int, default=4_000_000)
    parser.add_argument("--held-out-bytes", type=int, default=500_000)
    parser.add_argument(
        "--korean-weight", type=int, default=8, help="times the small Korean corpus is repeated"
    )
    args = parser.parse_args()

    root = _site_packages()
    en_train = english_texts(root, TRAIN_PACKAGES, args.english_bytes, metadata=True)
    en_test = english_texts(root, (HELD_OUT_PACKAGE,), args.held_out_bytes, metadata=False)
    ko_train, ko_test = korean_texts(root)
    train = en_train + ko_train * args.korean_weight
    size = lambda texts: sum(len(t.encode("utf-8")) for t in texts)  # noqa: E731
    print(
        f"train: English {size(en_train):,} B, Korean {size(ko_train):,} B x {args.korean_weight}"
    )
    print(f"held-out: English {size(en_test):,} B, Korean {size(ko_test):,} B")

    start = time.perf_counter()
    bpe = train_bpe(train, args.vocab_size)
    bpe_s = time.perf_counter() - start
    start = time.perf_counter()
    transition = int(args.transition * args.vocab_size)
    superbpe = train_superbpe(train, args.vocab_size, transition, show_progress=True)
    super_s = time.perf_counter() - start
    print(f"vocab: BPE {len(bpe)}, SuperBPE {len(superbpe)} (transition {transition})")
    print(f"training time: BPE {bpe_s:.1f} s, SuperBPE {super_s:.1f} s")
    for language, test in (("English", en_test), ("Korean", ko_test)):
        b, s = bytes_per_token(bpe, test), bytes_per_token(superbpe, test)
        print(f"{language}: bytes/token BPE {b:.3f}, SuperBPE {s:.3f}, ratio {s / b:.3f}x")
    print(f"superword share of SuperBPE vocabulary: {superword_share(superbpe):.1%}")
    print(f"superword share of BPE vocabulary: {superword_share(bpe):.1%}")


if __name__ == "__main__":
    sys.exit(main())
