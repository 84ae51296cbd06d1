"""Every ```python block of README.md and docs/*.md runs as printed.

Each block runs in its own interpreter (``sys.executable``) with the repository on the path.
The working folder holds links to the repository's shipped files (``assets/``, ``configs/``),
so a block reads them by the same relative paths a reader uses from the repository root, and
whatever it writes (``runs/...``) lands in a scratch folder, not in the checkout. The blocks of
one document run in order in one folder, so a later block may use what an earlier one saved,
as a reader going down the page would. No block is skipped: an example that needs something
this machine may lack (a GPU) must say so in code and fall back
(``device = "cuda" if torch.cuda.is_available() else "cpu"``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.S | re.M)
SHIPPED = ("assets", "configs")


def python_blocks(document: Path) -> list[str]:
    return [m["code"] for m in BLOCK.finditer(document.read_text(encoding="utf-8"))]


def test_the_docs_have_python_examples() -> None:
    counts = {doc.name: len(python_blocks(doc)) for doc in DOCUMENTS}
    assert counts["README.md"] >= 1
    assert sum(counts.values()) >= 10, counts


LINK = re.compile(r"\]\((?!https?://)(?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def test_relative_links_point_to_files_in_the_repository() -> None:
    for document in DOCUMENTS:
        for match in LINK.finditer(document.read_text(encoding="utf-8")):
            target = (document.parent / match["target"]).resolve()
            assert target.exists(), f"{document.name} links to a missing {match['target']}"


SHELL_BLOCK = re.compile(r"^```bash\n(?P<code>.*?)^```", re.S | re.M)
OPTIONAL = re.compile(r"\[[^\]]*\]")  # "[--lr 1e-4]": an option the text calls optional


def omni_command_lines(document: Path) -> list[list[str]]:
    """The arguments of every ``omni ...`` (or ``-m omni.cli ...``) line of the shell blocks."""
    commands = []
    for block in SHELL_BLOCK.finditer(document.read_text(encoding="utf-8")):
        for line in block["code"].replace("\\\n", " ").splitlines():
            words = shlex.split(OPTIONAL.sub("", line), comments=True)
            for program in ("omni", ".venv/bin/omni", "omni.cli"):
                if program in words:
                    commands.append(words[words.index(program) + 1 :])
                    break
    return commands


def test_omni_commands_in_the_docs_parse() -> None:
    from omni.cli import build_parser

    parser = build_parser()
    commands = [(doc.name, argv) for doc in DOCUMENTS for argv in omni_command_lines(doc)]
    assert len(commands) >= 20
    for name, argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: omni {shlex.join(argv)} does not parse")


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory) -> dict[str, Path]:
    """One scratch folder per document, holding links to the shipped files."""
    folders = {}
    for document in DOCUMENTS:
        folder = tmp_path_factory.mktemp(document.stem)
        for name in SHIPPED:
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
        folders[document.name] = folder
    return folders


def run_block(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_python_blocks_run_as_printed(document: Path, workdirs: dict[str, Path]) -> None:
    for index, code in enumerate(python_blocks(document)):
        done = run_block(code, workdirs[document.name])
        assert done.returncode == 0, (
            f"{document.name}, python block {index + 1}:\n{code}\n--- stderr ---\n{done.stderr[-4000:]}"
        )
