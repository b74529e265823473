"""The package's import graph has no cycle (module level and function level imports alike), and
data/ imports nothing above it (no training loop, no backbone)."""
import ast
from pathlib import Path

import headstart

ROOT = Path(headstart.__file__).parent
MODULES = {("headstart." + ".".join(f.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
           for f in ROOT.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for f in ROOT.rglob("*.py"):
        mod = "headstart." + ".".join(f.relative_to(ROOT).with_suffix("").parts)
        mod = mod.removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("headstart"):
                # ``from headstart import recipes`` depends on the module headstart.recipes
                subs = {f"{node.module}.{a.name}" for a in node.names}
                found = {m for m in subs if m in MODULES}
                deps |= found or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("headstart")}
        graph[mod] = {d for d in deps if d != mod}
    return graph


def _package(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_modules():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep in graph and state.get(dep) is None:
                visit(dep, path + [dep])
        state[node] = 2

    for mod in graph:
        if mod not in state:
            visit(mod, [mod])


def test_data_imports_nothing_above_it():
    above = ("headstart.training", "headstart.backbones", "headstart.strategies", "headstart.tasks",
             "headstart.features", "headstart.api")
    bad = {m: sorted(d for d in deps if d.startswith(above)) for m, deps in _graph().items()
           if m.startswith("headstart.data")}
    assert not {m: d for m, d in bad.items() if d}
