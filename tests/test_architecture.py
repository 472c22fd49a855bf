"""The package's imports point one way (docs/ARCHITECTURE.md): every import of every module,
function-level and type-only ones included, is read from the source; the test fails on a cycle,
on an import from a higher layer, on a module no layer owns, and on Prefect in the library."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "wq_pipeline"

#: layer of every module (a package name covers its modules), lowest first; docs/ARCHITECTURE.md
LAYERS: dict[str, tuple[str, ...]] = {
    "foundation": ("_version", "errors", "common", "options", "config"),
    "data": ("data",),
    "decompose": ("decompose",),
    "models": ("models",),
    "store": ("store",),
    "evaluation": ("evaluation",),
    "report": ("report",),
    "serve": ("serve",),
    "entry": ("api", "settings", "cli", ""),  # "": the package facade (wq_pipeline/__init__.py)
}
RANK = {"foundation": 0, "data": 1, "decompose": 2, "models": 3, "store": 4, "evaluation": 4, "report": 5,
        "serve": 5, "entry": 6}
#: layers of the same rank or below that a layer still may not import
FORBIDDEN = {"store": {"evaluation", "report", "serve", "entry"}, "evaluation": {"store"},
             "report": {"store", "serve", "entry"}, "serve": {"report"}}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (REPO / PACKAGE).rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports, anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        else:
            continue
        for t in targets:
            while t and t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name:
                found.add(t)
    return found


def _layer(name: str) -> str | None:
    rel = name[len(PACKAGE) + 1:] if name != PACKAGE else ""
    head = rel.split(".")[0]
    for layer, owned in LAYERS.items():
        if head in owned:
            return layer
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    assert [m for m in _graph() if _layer(m) is None] == []


def test_imports_point_down_the_layers():
    wrong = []
    for src, targets in _graph().items():
        a = _layer(src)
        for dst in sorted(targets):
            b = _layer(dst)
            if RANK[b] > RANK[a] or b in FORBIDDEN.get(a, set()):
                wrong.append(f"{src} ({a}) imports {dst} ({b})")
    assert wrong == []


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_library_never_imports_prefect_or_the_flows():
    offenders = []
    for path in (REPO / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for n in names:
                if n.split(".")[0] in ("prefect", "prefect_dask") or (n.split(".")[0] == "flows"
                                                                       and path.name != "cli.py"):
                    offenders.append(f"{path.relative_to(REPO)}: {n}")
    assert offenders == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """The walk finds what a rule needs: relative imports inside functions, and packages."""
    graph = _graph()
    assert "wq_pipeline.evaluation.pipeline" in graph["wq_pipeline.evaluation.global_networks"]  # imported inside a function
    assert "wq_pipeline.models.forecaster" in graph["wq_pipeline.models.statistical"]  # from .forecaster
    assert "wq_pipeline.api" in graph["wq_pipeline"]  # the facade's lazy import
