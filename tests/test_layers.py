"""The package's layers import only downward, and no module imports itself back in a cycle.

Every import in handshake_lab, at module level or inside a function, is read with `ast` and
resolved to the module it names; a module may import from its own layer or a lower one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "handshake_lab"

#: Bottom to top; see the README's package section.
LAYERS = [
    "platforms",
    "timeouts",
    "model",
    "kernel",
    "net",
    "record",
    "capture",
    "stepper",
    "show",
    "top",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: __init__ only maps names lazily
        return "top"
    return parts[1] if parts[1] in LAYERS else "top"


def _imports(path: Path, *, module_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) for every import of the package's own modules in `path`."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("handshake_lab"):
                # `from ..kernel import tcp_info` imports the submodule tcp_info
                submodules = [
                    (f"{target}.{alias.name}", node.lineno)
                    for alias in node.names
                    if _is_module(f"{target}.{alias.name}")
                ]
                # `from .. import platforms` runs the package's lazy __init__, nothing else
                if node.module or not submodules:
                    found.append((target, node.lineno))
                found += submodules
        elif isinstance(node, ast.Import):
            found += [
                (alias.name, node.lineno)
                for alias in node.names
                if alias.name.startswith("handshake_lab")
            ]
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: _module_name(path))
def test_imports_go_only_down_the_layers(path):
    source_layer = _layer(_module_name(path))
    upward = [
        f"line {line}: {target} ({_layer(target)})"
        for target, line in _imports(path)
        if LAYERS.index(_layer(target)) > LAYERS.index(source_layer)
    ]
    assert not upward, f"{_module_name(path)} ({source_layer}) imports up a layer: {upward}"


def test_no_module_level_import_cycle():
    graph = {
        _module_name(path): {
            target
            for target, _ in _imports(path, module_level_only=True)
            if target != _module_name(path)
        }
        for path in MODULES
    }
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in done or module not in graph:
            return
        assert module not in visiting, f"import cycle: {' -> '.join([*trail, module])}"
        visiting.add(module)
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
