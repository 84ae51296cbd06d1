"""SuperBPE vs BPE encoding efficiency at equal vocabulary size, on held-out English and Korean.

Running text that installed packages ship, unwrapped into paragraphs (hard line breaks would cut
every superword at the wrap column), split by document into train and held-out:

- English: LibreOffice help (Debian ``libreoffice-help-en-us``), the Debian FAQ (``debian-faq``)
  and installation guide (``installation-guide-amd64``), GNU info manuals (``/usr/share/info``),
  Python's reference topics (``pydoc_data``) and the standard library's docstrings.
- Korean: LibreOffice help (``libreoffice-help-ko``, paragraphs written in Hangul), the Debian FAQ
  (``debian-faq-ko``) and installation guide, the Korean message catalogues of installed programs
  (``/usr/share/locale/ko``) and of LibreOffice (``libreoffice-l10n-ko``), and konlpy's corpora
  (constitution, bills).

The Debian help packages need not be installed; their files are read from ``--deb-root`` too::

    mkdir -p runs/superbpe/debs && cd runs/superbpe/debs && apt-get download \\
        libreoffice-help-en-us libreoffice-help-ko libreoffice-l10n-ko debian-faq debian-faq-ko \\
        installation-guide-amd64 \\
        && for d in *.deb; do dpkg-deb -x "$d" .; done

Only running text is kept: English paragraphs of six or more words with a sentence end, Korean
paragraphs of four or more words mostly in Hangul (held-out ones need a sentence end too).
The held-out split is strict: whole documents (a help page, a manual, a catalogue, a bill) go to
one side by a hash of their name, the same LibreOffice pages are held out in both languages, and
a held-out paragraph is dropped if it occurs in training or shares half of its word 6-grams
with training text. The defaults (65,536 tokens, transition at 75%, Korean text weighted x2) are
the setting the README reports; a sweep (one thread; see README "SuperBPE")::

    RAYON_NUM_THREADS=1 .venv/bin/python benchmarks/bench_superbpe.py \\
        --vocab-sizes 16384 32768 65536 --transitions 0.6 0.75 0.8 --korean-weight 2
"""

from __future__ import annotations

import argparse
import ast
import gettext
import gzip
import json
import re
import site
import sys
import sysconfig
import time
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from tokenizers_mm.text import bytes_per_token, superword_share, train_bpe, train_superbpe

HELD_OUT_EVERY = 10  # one document in ten is held out
SHINGLE = 6
ROOTS = (Path("/"),)
DEFAULT_DEB_ROOT = Path("runs/superbpe/debs")
DEFAULT_CACHE = Path("runs/superbpe/corpus.json")
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
_SPACES = re.compile(r"\s+")


# ---- text clean-up -------------------------------------------------------------------------


def _hangul_share(text: str) -> float:
    letters = sum(c.isalpha() for c in text)
    return sum("\uac00" <= c <= "\ud7a3" for c in text) / max(letters, 1)


def _is_english_prose(text: str) -> bool:
    words = text.split()
    letters = sum(c.isascii() and c.isalpha() for c in text)
    return (
        len(words) >= 6
        and letters >= 0.6 * len(text.replace(" ", ""))
        and _SENTENCE_END.search(text) is not None
        and ">>>" not in text
    )


def _is_korean_prose(text: str) -> bool:
    return len(text.split()) >= 4 and _hangul_share(text) >= 0.5


def _unwrap_blocks(text: str) -> Iterator[str]:
    """Paragraphs of hard-wrapped plain text: blank-line separated blocks, cut further where the
    indentation changes (code, option lists), each run of lines joined with single spaces."""
    for block in re.split(r"\n[^\S\n]*\n", text):
        run: list[str] = []
        indent = None
        for line in block.split("\n"):
            if not line.strip():
                continue
            here = len(line) - len(line.lstrip())
            if run and here != indent:
                yield _SPACES.sub(" ", " ".join(run)).strip()
                run = []
            indent = here
            run.append(line.strip())
        if run:
            yield _SPACES.sub(" ", " ".join(run)).strip()


class _BlockText(HTMLParser):
    """Text of the innermost block elements of an HTML page, one paragraph each."""

    BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "td", "th", "dd", "dt", "div"})
    SKIP = frozenset({"script", "style", "pre", "code"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._buffer: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        text = _SPACES.sub(" ", "".join(self._buffer)).strip()
        if text:
            self.paragraphs.append(text)
        self._buffer = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCKS or tag == "br":
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip = max(self._skip - 1, 0)
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data):
        if not self._skip:
            self._buffer.append(data)


def _html_paragraphs(path: Path) -> list[str]:
    parser = _BlockText()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    parser._flush()
    return parser.paragraphs


# ---- sources: (document id, paragraphs) ----------------------------------------------------


def _find(roots: tuple[Path, ...], relative: str) -> Path | None:
    for root in roots:
        if (root / relative).is_dir():
            return root / relative
    return None


def _libreoffice(roots, language: str) -> Iterator[tuple[str, list[str]]]:
    folder = _find(roots, f"usr/share/libreoffice/help/{language}")
    if folder is None:
        print(f"  (libreoffice-help-{language.lower()} not found: see the module docstring)")
        return
    for path in sorted(folder.rglob("*.html")):
        yield f"libreoffice/{path.relative_to(folder)}", _html_paragraphs(path)


def _debian_faq(roots, language: str) -> Iterator[tuple[str, list[str]]]:
    pattern = "ko/*.ko.html" if language == "ko" else "*.en.html"
    folder = _find(roots, "usr/share/doc/debian/FAQ")
    if folder is None:
        print(f"  (debian-faq{'-ko' if language == 'ko' else ''} not found)")
        return
    for path in sorted(folder.glob(pattern)):
        yield f"debian-faq/{path.name.split('.')[0]}", _html_paragraphs(path)


def _installation_guide(roots, language: str) -> Iterator[tuple[str, list[str]]]:
    folder = _find(roots, f"usr/share/doc/installation-guide-amd64/{language}")
    if folder is None:
        print("  (installation-guide-amd64 not found)")
        return
    for path in sorted(folder.glob("*.html")):
        yield f"installation-guide/{path.stem}", _html_paragraphs(path)


def _info_manuals() -> Iterator[tuple[str, list[str]]]:
    for path in sorted(Path("/usr/share/info").glob("*.info*.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        text = re.sub(r"\x1f\n(File|Tag Table|End Tag Table)[^\n]*\n", "\n\n", text)
        yield f"info/{path.name.split('.')[0]}", list(_unwrap_blocks(text))


def _python_docs() -> Iterator[tuple[str, list[str]]]:
    from pydoc_data.topics import topics

    for name, text in sorted(topics.items()):
        yield f"pydoc/{name}", list(_unwrap_blocks(text))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if relative.parts[0] in {"test", "site-packages", "idlelib", "lib2to3"}:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        nodes = [
            tree,
            *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)),
        ]
        docs = [d for d in (ast.get_docstring(n) for n in nodes) if d]
        yield f"stdlib/{relative}", [p for d in docs for p in _unwrap_blocks(d)]


def _message_catalogues(roots) -> Iterator[tuple[str, list[str]]]:
    folders = [Path("/usr/share/locale/ko/LC_MESSAGES")]
    folders += [root / "usr/lib/libreoffice/program/resource/ko/LC_MESSAGES" for root in roots]
    # by file name: a catalogue found both installed and under --deb-root is read once
    paths = {path.name: path for folder in folders for path in sorted(folder.glob("*.mo"))}
    for _, path in sorted(paths.items()):
        try:
            catalogue = gettext.GNUTranslations(path.open("rb"))._catalog
        except Exception:  # a catalogue gettext cannot read is skipped
            continue
        lines = {
            _SPACES.sub(" ", line).strip()
            for value in catalogue.values()
            if isinstance(value, str)
            for line in value.split("\n")
        }
        yield f"locale/{path.stem}", sorted(lines)


def _konlpy() -> Iterator[tuple[str, list[str]]]:
    corpus = None
    for folder in site.getsitepackages():
        if (Path(folder) / "konlpy/data/corpus").is_dir():
            corpus = Path(folder) / "konlpy/data/corpus"
    if corpus is None:
        print("  (konlpy not installed)")
        return
    for path in sorted(corpus.rglob("*.txt")):
        # Bills are wrapped mid-word with a blank line after every line: a line that starts
        # indented or follows a sentence end starts a paragraph, others continue the last one.
        paragraphs: list[str] = []
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            starts = not paragraphs or line[:1].isspace() or paragraphs[-1].endswith((".", ":"))
            if starts:
                paragraphs.append(line.strip())
            else:
                paragraphs[-1] += line.rstrip("\n")
        yield f"konlpy/{path.relative_to(corpus)}", [_SPACES.sub(" ", p) for p in paragraphs]


# ---- split ---------------------------------------------------------------------------------


def _held_out(doc_id: str) -> bool:
    return zlib.crc32(doc_id.encode()) % HELD_OUT_EVERY == 0


def _shingles(text: str) -> set[str]:
    words = text.split()
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def split_language(
    documents: Iterator[tuple[str, list[str]]], keep
) -> tuple[list[str], list[str], dict[str, int]]:
    """(train paragraphs, held-out paragraphs, stats): exact duplicates dropped from both sides,
    held-out paragraphs that appear in, or share half their word 6-grams with, training dropped.
    Held-out paragraphs must also be running text, with at least one sentence end."""
    train, test, seen_train, seen_test = [], [], set(), set()
    for doc_id, paragraphs in documents:
        held_out = _held_out(doc_id)
        side, seen = (test, seen_test) if held_out else (train, seen_train)
        for paragraph in paragraphs:
            if held_out and not _SENTENCE_END.search(paragraph):
                continue
            if keep(paragraph) and paragraph not in seen:
                seen.add(paragraph)
                side.append(paragraph)
    train_shingles = set().union(*(_shingles(p) for p in train))
    kept = []
    for paragraph in test:
        shingles = _shingles(paragraph)
        overlap = len(shingles & train_shingles) / len(shingles) if shingles else 0.0
        if paragraph not in seen_train and overlap < 0.5:
            kept.append(paragraph)
    stats = {"held_out_dropped": len(test) - len(kept)}
    return train, kept, stats


def build_corpus(deb_root: Path) -> dict[str, dict[str, list[str]]]:
    roots = (deb_root, *ROOTS)

    def english():
        yield from _libreoffice(roots, "en-US")
        yield from _debian_faq(roots, "en")
        yield from _installation_guide(roots, "en")
        yield from _info_manuals()
        yield from _python_docs()

    def korean():
        yield from _libreoffice(roots, "ko")
        yield from _debian_faq(roots, "ko")
        yield from _installation_guide(roots, "ko")
        yield from _message_catalogues(roots)
        yield from _konlpy()

    corpus = {}
    for language, documents, keep in (
        ("en", english(), _is_english_prose),
        ("ko", korean(), _is_korean_prose),
    ):
        train, test, stats = split_language(documents, keep)
        corpus[language] = {"train": train, "held_out": test}
        print(
            f"  {language}: dropped {stats['held_out_dropped']} near-duplicate held-out paragraphs"
        )
    return corpus


def load_corpus(cache: Path, deb_root: Path, rebuild: bool = False) -> dict:
    if cache.is_file() and not rebuild:
        return json.loads(cache.read_text(encoding="utf-8"))
    print("building the corpus ...")
    corpus = build_corpus(deb_root)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(corpus, ensure_ascii=False), encoding="utf-8")
    return corpus


def _mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[65536])
    parser.add_argument("--transitions", type=float, nargs="+", default=[0.75], help="of vocab")
    parser.add_argument("--deb-root", type=Path, default=DEFAULT_DEB_ROOT)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached corpus")
    parser.add_argument("--save", type=Path, default=None, help="save the tokenizers here")
    parser.add_argument("--korean-weight", type=int, default=2, help="Korean text repeats")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()

    corpus = load_corpus(args.cache, args.deb_root, args.rebuild)
    for language in ("en", "ko"):
        part = corpus[language]
        print(
            f"{language}: train {_mb(part['train']):.2f} MB ({len(part['train']):,} paragraphs), "
            f"held-out {_mb(part['held_out']):.2f} MB ({len(part['held_out']):,} paragraphs)"
        )
    train = corpus["en"]["train"] + corpus["ko"]["train"] * args.korean_weight
    print(f"training mixture: English x1, Korean x{args.korean_weight}")
    print(
        "| vocab | transition | BPE en | SuperBPE en | en ratio | BPE ko | SuperBPE ko | ko ratio "
        "| superwords | SuperBPE train s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for vocab_size in args.vocab_sizes:
        bpe = train_bpe(train, vocab_size)
        base = {lang: bytes_per_token(bpe, corpus[lang]["held_out"]) for lang in ("en", "ko")}
        assert superword_share(bpe) == 0.0
        for fraction in args.transitions:
            start = time.perf_counter()
            transition = int(fraction * vocab_size)
            superbpe = train_superbpe(train, vocab_size, transition)
            seconds = time.perf_counter() - start
            cells = []
            row = {"vocab_size": vocab_size, "transition": fraction, "seconds": round(seconds)}
            for lang in ("en", "ko"):
                s = bytes_per_token(superbpe, corpus[lang]["held_out"])
                cells += [f"{base[lang]:.3f}", f"{s:.3f}", f"{s / base[lang]:.3f}x"]
                row[f"bytes_per_token_{lang}"] = {"bpe": base[lang], "superbpe": s}
            share = superword_share(superbpe)
            rows.append({**row, "superword_share": share})
            print(
                f"| {len(bpe):,} / {len(superbpe):,} | {fraction:.2f} ({transition:,}) | "
                + " | ".join(cells)
                + f" | {share:.1%} | {seconds:.0f} |",
                flush=True,
            )
            if args.save:
                superbpe.save_pretrained(args.save / f"superbpe_{vocab_size}_{fraction:.2f}")
        if args.save:
            bpe.save_pretrained(args.save / f"bpe_{vocab_size}")
    figures = {"korean_weight": args.korean_weight, "runs": rows}
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
