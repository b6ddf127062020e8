"""No module imports from a layer above its own (README, Development, lists the layers).

Every ``import`` statement counts, at the top of a file or inside a function or a
``TYPE_CHECKING`` block: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import from its own layer and the layers below it. The most
# specific prefix decides (tokenboard.gateway.embedded is ui, the rest of tokenboard.gateway is not).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "tokenboard.config",
            "tokenboard.kql",
            "tokenboard.export",
            "tokenboard.appinsights",
            "tokenboard.store",
            "tokenboard.recovery",
            "tokenboard.frames",
            "tokenboard.hits",
            "tokenboard.retries",
            "tokenboard.planning",
            "tokenboard.refusals",
            "tokenboard.safe",
            "tokenboard.access",
            "tokenboard.money",
            "tokenboard.forecast",
            "tokenboard.localtime",
        ),
    ),
    (
        "telemetry sources",
        ("tokenboard.demo", "tokenboard.importer", "tokenboard.probe", "tokenboard.gateway"),
    ),
    ("backends", ("tokenboard.backends", "tokenboard.settings")),
    ("views", ("tokenboard.views", "tokenboard.reports", "tokenboard.budgets")),
    ("ui", ("tokenboard.ui", "tokenboard.gateway.embedded")),
    (
        "entry points",
        (
            "app",
            "pages",
            "tokenboard.cli",
            "tokenboard.serve",
            "tokenboard.__main__",
            "tokenboard.gateway.cli",
            "tokenboard.gateway.__main__",
        ),
    ),
]


def layer_of(module: str) -> int:
    best, level = "", -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, index
    return level


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> set[str]:
    """The tokenboard modules a file imports (``from pkg import module`` counts as the module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "tokenboard"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tokenboard":
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                names.add(inner if is_module(inner) else node.module)
    return names


# tokenboard/__init__.py holds nothing and belongs to no layer.
SOURCES = sorted(
    p
    for p in [*ROOT.glob("tokenboard/**/*.py"), ROOT / "app.py", *ROOT.glob("pages/*.py")]
    if p != ROOT / "tokenboard" / "__init__.py"
)


def test_every_module_has_a_layer() -> None:
    unplaced = [module_name(p) for p in SOURCES if layer_of(module_name(p)) < 0]
    assert not unplaced, f"add to LAYERS (and the README's list): {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_from_a_layer_above(path: Path) -> None:
    own = layer_of(module_name(path))
    above = {
        name: LAYERS[layer_of(name)][0]
        for name in imported(path)
        if layer_of(name) > own and name != "tokenboard"
    }
    assert not above, f"{module_name(path)} ({LAYERS[own][0]}) imports from above: {above}"


def test_the_check_sees_a_deferred_import(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from tokenboard.ui import data\n", "utf-8")
    assert imported(source) == {"tokenboard.ui.data"}
