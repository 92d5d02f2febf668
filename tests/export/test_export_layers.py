"""export/ stands on floors: no import circle between its modules (module-level or inside a function), the shared
names below every format module, and readers of engines without the builder (issues #20 and #24)."""

from __future__ import annotations

import ast
from pathlib import Path

EXPORT = Path(__file__).resolve().parents[2] / "export"


def imports_of(path: Path) -> set[str]:
    """Sibling modules ``path`` imports anywhere in its body (``from .x import``, ``from resnet_hub.export.x``,
    ``importlib`` strings are not imports and stay out)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("resnet_hub.export."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("resnet_hub.export."))
    return {name for name in found if (EXPORT / f"{name}.py").exists()} - {path.stem}


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) for p in EXPORT.glob("*.py") if p.stem != "__init__"}


def test_no_import_circle_between_export_modules():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_shared_names_are_the_floor_and_engine_readers_do_not_import_the_builder():
    edges = graph()
    assert edges["names"] == set() and edges["digest"] == set()
    for reader in ("tensorrt_runtime", "directory", "audit", "batch_model", "runtime", "manifest", "engine_record"):
        assert "tensorrt" not in edges[reader], reader
        assert "onnx" not in edges[reader], reader  # the ONNX exporter is not where shared names live
    for fmt in ("onnx", "tensorrt", "triton"):
        assert "names" in edges[fmt], fmt
