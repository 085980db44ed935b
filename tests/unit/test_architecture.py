"""The import graph of src/acqsynth: no cycle, and models/ depends on nothing above it.

Every import counts, at the top of a module or inside a function, except those under
`if TYPE_CHECKING:` (which never run). Built with `ast`, so nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "acqsynth"
MODELS_MAY_NOT_IMPORT = ("generation", "acquisition", "strategies", "run", "experiment", "cli")


def module_name(path: Path) -> str:
    """`src/acqsynth/models/student.py` → `acqsynth.models.student`; a package is its `__init__`."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(test: ast.expr) -> bool:
    """Whether an `if` test is `TYPE_CHECKING` or `typing.TYPE_CHECKING`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in `tree` outside `if TYPE_CHECKING:` blocks."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            found.append((base, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the acqsynth modules it imports."""
    paths = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for base, names in imported_names(tree, name, path.name == "__init__.py"):
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in paths] or [base]
            if base not in paths and targets == [base]:  # an unknown module: nearest known package
                while base not in paths and "." in base:
                    base = base.rpartition(".")[0]
                targets = [base]
            graph[name].update(t for t in targets if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path = [root]
        stack = [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_graph_sees_imports_inside_functions_and_skips_type_checking() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from acqsynth.a import x\n"
        "def f():\n    from acqsynth.b import y\n"
        "from . import c\n"
    )
    found = imported_names(ast.parse(code), "acqsynth.m", is_package=False)
    assert ("acqsynth.b", ["y"]) in found and ("acqsynth", ["c"]) in found
    assert all(base != "acqsynth.a" for base, _ in found)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert "acqsynth.models.hf_student" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_models_import_nothing_above_them() -> None:
    graph = import_graph()
    banned = {f"{PACKAGE}.{p}" for p in MODELS_MAY_NOT_IMPORT}
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name == f"{PACKAGE}.models" or name.startswith(f"{PACKAGE}.models.")
        for target in targets
        if ".".join(target.split(".")[:2]) in banned
    )
    assert not bad, "\n".join(bad)
