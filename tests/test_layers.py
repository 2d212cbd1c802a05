"""The architecture as a test: app/'s layers import only the layers below them, nothing in app/,
featurize/ or training/ imports in a circle, and no function grows past 80 lines. Read from the
source (every import, module-level or inside a function), so the rule holds for lazy imports too.

    shell       app/jobs.py, app/ui.py, app/ui_practice.py, app/ui_live.py, app/cli.py, app/__main__.py
    evaluation  app/evaluation/
    study | practice   app/study/, app/practice/  (side by side: neither imports the other)
    speech      app/speech/
    language    app/language/
    base        app/base/
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "featurize", "training")
LAYERS = {"base": 1, "language": 2, "speech": 3, "study": 4, "practice": 4, "evaluation": 5}
SHELL = 6
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that `path` imports anywhere in it (`from app.x import y` counts as
    app.x.y when that is a module, else app.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = our_modules()
    # A package's __init__ is imported with any of its modules: leaving it out of the edges keeps
    # `import app.speech.audio` from reading as an import of every sibling.
    return {name: {m for m in imports_of(path, modules) if m != name and not (name.startswith(m + ".")
                                                                           and modules[m].name == "__init__.py")}
            for name, path in modules.items()}


def layer_of(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if parts[0] != "app" or len(parts) == 1:
        return None
    if parts[1] in LAYERS:
        return parts[1], LAYERS[parts[1]]
    return "shell", SHELL


def test_every_module_of_app_is_in_a_layer():
    loose = [m for m in our_modules() if m.startswith("app.") and layer_of(m)[0] == "shell"
             and m.split(".")[1] not in ("jobs", "ui", "ui_practice", "ui_live", "cli", "__main__")]
    assert not loose, f"modules outside every layer (put each in the sub-package of its layer): {loose}"


def test_no_layer_imports_a_layer_above_its_own():
    wrong = []
    for module, imported in graph().items():
        own = layer_of(module)
        if own is None:
            continue
        for target in imported:
            theirs = layer_of(target)
            if theirs is None:
                continue
            if theirs[1] > own[1] or (theirs[1] == own[1] and theirs[0] != own[0]):
                wrong.append(f"{module} ({own[0]}) imports {target} ({theirs[0]})")
    assert not wrong, "\n".join(wrong)


def test_the_pipelines_do_not_import_the_app_shell():
    shell = [f"{m} imports {t}" for m, targets in graph().items() if not m.startswith("app.")
             for t in targets if (layer_of(t) or ("", 0))[0] == "shell"]
    assert not shell, "\n".join(shell)


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other (a circle has two or more)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_strongly_connected_finds_a_circle_and_nothing_else():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(g for g in strongly_connected(edges) if len(g) > 1) == [["a", "b", "c"]]


def test_no_import_circles():
    circles = [g for g in strongly_connected(graph()) if len(g) > 1]
    assert not circles, f"modules that import each other: {circles}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_80_lines(package):
    long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "\n".join(long)
