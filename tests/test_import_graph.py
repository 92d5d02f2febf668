"""No import circles between project modules, at module level or inside functions.

A function-local import is for start-up speed only (the CLI must answer without torch); it must never hide a
cycle. This test reads every module of ``resnet_hub`` (with ``export/``, installed as ``resnet_hub.export``) with
``ast`` -- so it sees imports inside functions and under ``TYPE_CHECKING`` that no running process may reach --
builds the graph of imports between project modules and fails on every strongly connected component of more
than one module (or a module that imports itself), naming the edges that close it.

A package's ``__init__`` is an edge only when it is named (``from resnet_hub import X``); importing
``resnet_hub.a.b`` runs the parents' ``__init__`` too, but counting that would put every module in a circle with
the package that re-exports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Where each project package's sources live (pyproject.toml's package-dir maps resnet_hub.export to export/).
PACKAGE_ROOTS = {"resnet_hub": REPO_ROOT / "resnet_hub", "resnet_hub.export": REPO_ROOT / "export"}

# Known circles that another branch removes; the lead deletes each entry when that branch merges. Any other
# circle, or a known one that grows, fails.
EXPECTED_CYCLES: list[frozenset[str]] = []  # none: a new circle is a defect, not an exception to list here


def project_modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file of the project packages."""
    modules: dict[str, Path] = {}
    for package, root in PACKAGE_ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if name.startswith("resnet_hub.export") and package == "resnet_hub":
                continue  # resnet_hub/export/ does not exist in the sources; guard against a stray copy
            modules[name] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``name`` imports anywhere in its source (module level, functions, classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(path) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _nearest_module(alias.name, modules)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            target = _nearest_module(base, modules)
            if target is None:
                continue
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name` runs pkg/__init__.py.
            found.update(submodules)
            if len(submodules) < len(node.names) or base != target:
                found.add(target)
    return found


def _nearest_module(dotted: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted import name refers to (``resnet_hub.x.Name`` -> ``resnet_hub.x``)."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with a cycle (Tarjan), each as the set of its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        # Recursive on purpose: the graph has ~100 nodes, far below the recursion limit.
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(component: frozenset[str], graph: dict[str, set[str]]) -> str:
    edges = sorted(f"{a} -> {b}" for a in component for b in graph[a] if b in component)
    return "circle between " + ", ".join(sorted(component)) + ":\n    " + "\n    ".join(edges)


def test_the_graph_sees_the_project_and_function_local_imports():
    graph = import_graph()
    # The packages are all there, export/ under its installed name.
    assert {"resnet_hub", "resnet_hub.cli.app", "resnet_hub.export.onnx", "resnet_hub.model.configs"} <= set(graph)
    # A function-local import counts: the CLI imports its commands' library modules only inside functions.
    source = (REPO_ROOT / "resnet_hub" / "cli" / "predict.py").read_text(encoding="utf-8")
    assert "\n    from ..tasks.predict import" in source or "\n        from ..tasks.predict import" in source
    assert "resnet_hub.tasks.predict" in graph["resnet_hub.cli.predict"]


def test_a_function_local_import_that_closes_a_circle_is_found(tmp_path):
    """The checker itself on a two-module package: a cycle hidden in a function is still a cycle."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "low.py").write_text("def f():\n    from .high import g  # hidden\n    return g\n")
    (tmp_path / "pkg" / "high.py").write_text("from . import low\n\ndef g():\n    return low\n")
    modules = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.low": tmp_path / "pkg" / "low.py",
               "pkg.high": tmp_path / "pkg" / "high.py"}
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph["pkg.low"] == {"pkg.high"} and graph["pkg.high"] == {"pkg.low"}
    assert circles(graph) == [frozenset({"pkg.low", "pkg.high"})]


def test_no_import_closes_a_circle_between_project_modules():
    graph = import_graph()
    unexpected = [c for c in circles(graph) if c not in EXPECTED_CYCLES]
    assert not unexpected, "\n".join(describe(c, graph) for c in unexpected)


# The floors of resnet_hub, bottom to top (the package docstring states the rule and the README draws it).
# ``export/`` (installed as resnet_hub.export) is a task: it reads data and evaluates, and benchmark and batch
# evaluation run exports, so it shares the tasks floor.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("ground", ("resnet_hub._interrupt", "resnet_hub._timm_hook", "resnet_hub._version", "resnet_hub.errors",
                "resnet_hub.leftovers", "resnet_hub.cpu", "resnet_hub.devices")),
    ("model", ("resnet_hub.model",)),
    ("weights", ("resnet_hub.weights",)),
    ("zoo", ("resnet_hub.zoo",)),
    ("tasks", ("resnet_hub.tasks", "resnet_hub.export")),
    ("public API", ("resnet_hub",)),  # the package's __init__ only: the names the README shows
    ("cli", ("resnet_hub.cli", "resnet_hub.__main__")),
]


def floor_of(module: str) -> int:
    """Index into FLOORS of the floor a module stands on (the longest matching prefix wins)."""
    best, length = None, -1
    for level, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            exact_only = prefix == "resnet_hub"
            if (module == prefix or (not exact_only and module.startswith(prefix + "."))) and len(prefix) > length:
                best, length = level, len(prefix)
    if best is None:
        raise AssertionError(f"{module} stands on no floor: add it to a floor's folder (or to FLOORS)")
    return best


def test_every_module_stands_on_a_floor_and_imports_only_floors_below_it():
    graph = import_graph()
    upward = sorted(f"{a} ({FLOORS[floor_of(a)][0]}) -> {b} ({FLOORS[floor_of(b)][0]})"
                    for a, targets in graph.items() for b in targets if floor_of(b) > floor_of(a))
    assert not upward, "imports that reach up a floor:\n    " + "\n    ".join(upward)
    # The rule holds from the root's point of view too: nothing but the ground floor's modules is left there.
    root_modules = {p.stem for p in (REPO_ROOT / "resnet_hub").glob("*.py")} - {"__init__", "__main__"}
    assert {f"resnet_hub.{m}" for m in root_modules} == set(FLOORS[0][1])


def test_the_floor_check_catches_an_import_that_reaches_up():
    graph = {"resnet_hub.model.configs": {"resnet_hub.zoo.registry"}, "resnet_hub.zoo.registry": set()}
    upward = [(a, b) for a, targets in graph.items() for b in targets if floor_of(b) > floor_of(a)]
    assert upward == [("resnet_hub.model.configs", "resnet_hub.zoo.registry")]
