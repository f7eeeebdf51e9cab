"""The package's structure: layers import only downwards, no cycles, no hidden imports.

Layers, bottom to top: core <- data <- caffe <- models <- the lessons (surgery, fully_conv,
explain) <- ui <- course. `make lint` runs this file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {
    "core": 0,
    "data": 1,
    "caffe": 2,
    "models": 3,
    "surgery": 4,
    "fully_conv": 4,
    "explain": 4,
    "ui": 5,
    "course": 6,
}
LESSONS = ("surgery", "fully_conv", "explain")


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted((SRC / "convscope").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


MODULES = modules()


def imports(tree: ast.Module, inside_functions: bool) -> list[ast.ImportFrom | ast.Import]:
    nested = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and (id(node) in nested) == inside_functions
    ]


def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The convscope modules an import statement reads (relative imports are not used)."""
    assert not getattr(node, "level", 0), "use absolute imports: from convscope.core.net import Net"
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    found = []
    for name in names:
        if name == "convscope" or name.startswith("convscope."):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:  # `from convscope.core import net` reads a module
                    if f"{name}.{alias.name}" in MODULES:
                        found.append(f"{name}.{alias.name}")
            found.append(name)
    return [t for t in found if t in MODULES]


def layer(module: str) -> int | None:
    parts = module.split(".")
    return (
        LAYERS.get(parts[1]) if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None
    )


GRAPH = {
    name: {t for node in imports(tree, False) for t in targets(node)} - {name}
    for name, tree in MODULES.items()
}


def test_no_import_inside_a_function_reads_convscope():
    hidden = [
        f"{name}: {ast.unparse(node)}"
        for name, tree in MODULES.items()
        for node in imports(tree, True)
        if targets(node)
    ]
    assert not hidden


def test_no_import_cycles():
    inner = {
        name: {t for t in deps if t in MODULES and not t.endswith("convscope")}
        for name, deps in GRAPH.items()
        if name != "convscope"
    }
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(inner.get(nxt_ := node, set())):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[nxt_] = 2

    for name in sorted(inner):
        if name not in state:
            visit(name, [name])
    assert not cycles


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) is not None))
def test_imports_point_downwards(name):
    own = name.split(".")[1]
    for target in GRAPH[name]:
        if layer(target) is None:
            assert target in ("convscope",) and False, f"{name} imports the top package"
        other = target.split(".")[1]
        assert layer(target) <= layer(name), f"{name} imports {target}, a higher layer"
        if own in LESSONS and other in LESSONS:
            assert own == other, f"lesson package {own} imports lesson package {other}"


def test_only_the_command_line_imports_the_course_tools():
    users = {n for n, deps in GRAPH.items() for t in deps if t.startswith("convscope.course")}
    assert users - {n for n in MODULES if n.startswith("convscope.course")} <= {
        "convscope.__main__"
    }


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{name}: {alias.name} from {node.module}"
        for name, tree in MODULES.items()
        for node in imports(tree, False)
        if isinstance(node, ast.ImportFrom) and targets(node)
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not private
