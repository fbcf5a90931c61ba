"""Data flows one way (README, Architecture): catalog → plan → worker → row → results →
report / gate. These tests read every module's imports (lazy ones inside functions too)
with `ast` and hold the code to the stated rules, and to an import graph without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench.machine import REPO_ROOT

PACKAGES = ("bench", "workloads")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO_ROOT / pkg).rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """The project modules `module` imports: `from bench import measure` is bench.measure,
    `from bench.plan import Case` is bench.plan."""
    found: set[str] = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(MODULES[module].read_text(), str(MODULES[module]))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from .y import z
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found - {module}


GRAPH = {m: _imports(m) for m in MODULES}


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


# (is the importer bound by the rule, forbidden prefixes, why)
RULES = [
    (lambda m: _under(m, "workloads"), ("bench",), "workloads are defined without the engine"),
    (lambda m: m == "bench.stats", PACKAGES, "statistics know nothing of the project"),
    (lambda m: _under(m, "bench.frameworks"), ("bench.runner", "bench.results", "bench.cli", "bench.gate", "bench.report"),
     "adapters build and time; they never run, store, gate or report"),
    (lambda m: m == "bench.worker", ("bench.results", "bench.runner"), "a worker never writes files; the runner owns results"),
    (lambda m: _under(m, "bench.gate", "bench.report"), ("bench.runner", "bench.worker", "bench.cli"), "gate and report only read results"),
    (lambda m: m != "bench.__main__", ("bench.cli",), "only `python -m bench` imports the command line"),
]

# Imports that break a rule today and are being removed in a parallel change; each entry
# must still occur (delete it here once it is gone, so the rule guards it from then on).
KNOWN: dict[tuple[str, str], str] = {}


def _violations() -> set[tuple[str, str, str]]:
    found = set()
    for bound, forbidden, why in RULES:
        for module, targets in GRAPH.items():
            if bound(module):
                found.update((module, t, why) for t in targets if _under(t, *forbidden))
    return found


def test_data_flows_one_way():
    broken = sorted((m, t, why) for m, t, why in _violations() if (m, t) not in KNOWN)
    assert not broken, "\n".join(f"{m} imports {t}: {why}" for m, t, why in broken)


def test_the_import_graph_has_no_cycle():
    graph = {m: {t for t in targets if (m, t) not in KNOWN} for m, targets in GRAPH.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target] if target in path else [module, target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_lazy_imports():
    assert "bench.report" in GRAPH["bench.cli"]  # imported inside cmd_report
    assert "bench.frameworks.base" in GRAPH["bench.worker"]
