"""One module, one job: no source module grows past 400 lines (a file that needs a table of
contents is two files)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("omni", "encoders", "tokenizers_mm", "decoders", "training", "app", "benchmarks")
LIMIT = 400


def test_no_module_is_over_400_lines():
    modules = [path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py")]
    assert len(modules) > 50  # the walk found the packages
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert too_long == {}
