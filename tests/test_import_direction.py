"""Dependencies point one way (DESIGN.md): ``app``/``training`` -> ``omni`` -> ``encoders``,
``tokenizers_mm``, ``decoders`` -> ``omni.common``. Checked on the source (every ``import``
statement, including those inside functions), so a lazy import cannot hide a wrong edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("encoders", "tokenizers_mm", "decoders")
PACKAGES = (*PARTS, "omni", "training", "app")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (``from a.b import c`` counts as ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _graph() -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            names = _imports(path)
            graph[_module_name(path)] = {n for n in names if n.split(".")[0] in PACKAGES}
    return graph


GRAPH = _graph()


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _edges(sources, targets: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """Imports from modules under ``sources`` (prefixes, or a set of exact module names) into
    ``targets``, less those into ``allowed``."""
    return sorted(
        f"{module} -> {target}"
        for module, targets_of in GRAPH.items()
        if (module in sources if isinstance(sources, set) else _under(module, *sources))
        for target in targets_of
        if _under(target, *targets) and not _under(target, *allowed)
    )


def test_the_graph_sees_every_package():
    assert {name.split(".")[0] for name in GRAPH} == set(PACKAGES)
    assert "omni.common.loop" in GRAPH["decoders.vision_train"]  # a function-level import too
    assert "omni.common.loop" in GRAPH["tokenizers_mm.vision"]


def test_encoders_tokenizers_and_decoders_import_only_omni_common_of_the_layers_above():
    assert _edges(PARTS, ("omni", "training", "app"), allowed=("omni.common",)) == []


def test_omni_common_imports_nothing_above_it():
    assert _edges(("omni.common",), PACKAGES, allowed=("omni.common",)) == []


def test_omni_never_imports_training_or_app():
    assert _edges(("omni",), ("training", "app")) == []


def test_no_module_imports_a_command_module():
    """Commands are leaves: what two commands share lives in a library module."""
    clis = tuple(m for m in GRAPH if m.endswith("cli"))
    assert _edges(PACKAGES, clis) == []


@pytest.mark.parametrize("package", PARTS)
def test_no_cycle_between_encoders_tokenizers_and_decoders(package):
    """Package-level reachability: a package never reaches itself through another one."""
    uses = {
        p: {t.split(".")[0] for m, ts in GRAPH.items() if _under(m, p) for t in ts} - {p}
        for p in PARTS
    }
    seen, frontier = set(), set(uses[package]) & set(PARTS)
    while frontier:
        current = frontier.pop()
        seen.add(current)
        frontier |= (uses[current] & set(PARTS)) - seen
    assert package not in seen, f"{package} imports itself back through {sorted(seen)}"
