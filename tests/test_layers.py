"""The layers of DESIGN (README "Layout") hold: import rules and no import circles, checked on the
source (every import counts, inside functions and ``if TYPE_CHECKING:`` too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "lifeboat"

# layer -> the layers it must not import
FORBIDDEN = {
    "repo": {"pg", "letta", "ops", "cli", "letta_code"},
    "pg": {"letta", "ops", "cli"},
    "letta": {"ops", "cli"},
    "ops": {"cli"},
    "letta_code": {"pg"},
}
# Circles whose modules must not import each other in both directions, directly or not.
NO_CIRCLES_IN = ("repo", "ops")


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(root, path): path for path in sorted(root.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules of the package ``name`` imports (``from pkg import submodule`` counts as the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in known else base


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(root)
    known = set(modules)
    prefix = root.name + "."
    return {
        name: {target for target in _imports(name, path, known) if target.startswith(prefix)}
        for name, path in modules.items()
    }


def layer_violations(root: Path = PACKAGE) -> list[str]:
    found = []
    for module, targets in sorted(import_graph(root).items()):
        layer = module.split(".")[1] if module.count(".") >= 1 else ""
        for target in sorted(targets):
            if target.split(".")[1] in FORBIDDEN.get(layer, ()):
                found.append(f"{module} imports {target} ({layer} must not import {target.split('.')[1]})")
    return found


def circles(root: Path = PACKAGE, within: tuple[str, ...] = NO_CIRCLES_IN) -> list[list[str]]:
    """Strongly connected groups of two or more modules inside the given layers (Tarjan)."""
    prefixes = tuple(f"{root.name}.{layer}." for layer in within)
    graph = {
        module: {t for t in targets if t.startswith(prefixes)}
        for module, targets in import_graph(root).items()
        if module.startswith(prefixes)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_layers_import_only_downwards() -> None:
    assert layer_violations() == []


def test_no_import_circles_in_repo_and_ops() -> None:
    assert circles() == []


@pytest.fixture
def violating_package(tmp_path: Path) -> Path:
    """A copy of the layout with one violating import and one circle."""
    root = tmp_path / "lifeboat"
    for layer in ("repo", "pg", "ops", "cli"):
        (root / layer).mkdir(parents=True)
        (root / layer / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "repo" / "store.py").write_text(
        "def save():\n    from lifeboat.pg import connect  # lazy, still counted\n"
    )
    (root / "pg" / "connect.py").write_text("")
    (root / "ops" / "a.py").write_text("from lifeboat.ops import b\n")
    (root / "ops" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lifeboat.ops.a import A\n"
    )
    return root


def test_the_checks_fail_on_a_violation(violating_package: Path) -> None:
    assert layer_violations(violating_package) == [
        "lifeboat.repo.store imports lifeboat.pg.connect (repo must not import pg)"
    ]
    assert circles(violating_package) == [["lifeboat.ops.a", "lifeboat.ops.b"]]
