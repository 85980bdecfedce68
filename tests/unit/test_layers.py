"""The package's import graph, read from the source (every import, also those inside functions): layers import
only downwards, no command imports another, modules import one another without a circle, and no package hides a
cycle behind a lazy module `__getattr__`."""

from __future__ import annotations

import ast
from pathlib import Path

import ganinv

PACKAGE = Path(ganinv.__file__).parent
# Lowest first: a module imports its own layer and those below (ground floor: checkpoints.safe_io, for any layer).
LAYERS = [("errors", "warn", "configs", "inversion", "distributed"), ("stylegan2", "encoders", "losses"),
          ("checkpoints",), ("data", "toy"), ("methods", "metrics", "editing"), ("refine",),
          ("callbacks", "loggers", "sweeps"), ("workflows", "benchmarks"), ("commands",)]
GROUND = "ganinv.checkpoints.safe_io"
RANK = {group: k for k, layer in enumerate(LAYERS) for group in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ganinv module `path` imports, as far as it resolves to a module file (`from a import b` is module
    a.b where that is a module, else a)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[:len(parts) - node.level + 1], *([base] if base else [])])
            found |= {f"{base}.{a.name}" if exists(f"{base}.{a.name}") else base for a in node.names}
    return {m for m in found if m == "ganinv" or m.startswith("ganinv.")}


def exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def group(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                  if b != GROUND and group(a) in RANK and RANK.get(group(b), -1) > RANK[group(a)])


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (a package's __init__ re-exporting its modules and a module
    of it importing the package form one: modules take names from their siblings, not their package)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_package_has_a_layer():
    groups = {group(module_name(p)) for p in PACKAGE.rglob("*.py")} - {""}
    assert groups - set(RANK) == set()


def test_layers_import_only_downwards():
    assert upward(graph()) == []


def test_no_command_imports_another():
    edges = graph()
    assert sorted(f"{a} -> {b}" for a, targets in edges.items() if a.startswith("ganinv.commands.")
                  for b in targets if b.startswith("ganinv.commands.")) == []


def test_modules_import_each_other_without_a_circle():
    assert circles(graph()) == []


def test_the_checks_fail_on_what_they_guard():
    """An upward import, a command importing a command and a circle are each found."""
    edges = {"ganinv.losses.x": {"ganinv.methods.base", GROUND}, "ganinv.commands.a": {"ganinv.commands.b"},
             "ganinv.data.p": {"ganinv.data.q"}, "ganinv.data.q": {"ganinv.data.p"}}
    assert upward(edges) == ["ganinv.losses.x -> ganinv.methods.base"]
    assert circles(edges) == [["ganinv.data.p", "ganinv.data.q"]]


def test_no_package_hides_a_cycle_behind_a_lazy_getattr():
    for path in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(path.read_text())
        assert not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body), path
