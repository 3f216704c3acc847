"""The layout shows the architecture: packages in layers (ingestion, serving, orchestration,
the command line), each importing only those below it, and no import cycles."""

import ast
from pathlib import Path

from .conftest import REPO

LAYERS = ["loaders", "serving", "orchestration", "cli"]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: within the same package
                base = ".".join(path.relative_to(REPO).with_suffix("").parts[: -node.level])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] in LAYERS}


def modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(REPO).with_suffix("").parts): path
        for layer in LAYERS for path in (REPO / layer).rglob("*.py")
    }


def test_packages_import_only_the_layers_below() -> None:
    wrong = []
    for name, path in modules().items():
        own = LAYERS.index(name.split(".")[0])
        for imported in imports_of(path):
            if LAYERS.index(imported.split(".")[0]) > own:
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_no_module_imports_the_command_line_and_there_are_no_cycles() -> None:
    known = modules()
    graph = {
        name: {i for i in imports_of(path) if i in known or f"{i}.__init__" in known}
        for name, path in known.items()
    }
    importers = [n for n, deps in graph.items() if any(d.startswith("cli") for d in deps)]
    assert [n for n in importers if not n.startswith("cli")] == []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [])
