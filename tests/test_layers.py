"""The layers are folders, and imports go one way: down.

Reads every module of the package (its source, not its runtime state), builds
the graph of imports between taskrun's own modules, and checks that it has no
cycle, that no import runs up a layer, and that no taskrun module is imported
inside a function outside the short list of lazy imports below. Then imports
every module, and ``import taskrun`` alone, in fresh interpreters.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "taskrun"

#: Layer of each module, by the first matching prefix (lowest first). A module
#: may import its own layer (without a cycle) and any lower one.
LAYERS: list[tuple[str, ...]] = [
    ("taskrun.exceptions", "taskrun.annotations", "taskrun.settings", "taskrun._plain", "taskrun._ids",
     "taskrun.states", "taskrun._hooks", "taskrun._jitter", "taskrun._validation"),
    # Results: keys, records, stores, locks, transactions. Knows nothing of the engine,
    # which calls it (``_engine/_caching.py``).
    ("taskrun._results",),
    ("taskrun._core", "taskrun._limits"),
    # Observability: the engine emits into it, so it knows nothing of the engine.
    ("taskrun._observe",),
    ("taskrun._engine",),
    ("taskrun.tasks",),
    ("taskrun._runners",),
    ("taskrun.flows",),
    ("taskrun.task_runners", "taskrun.futures", "taskrun.context", "taskrun.dask",
     "taskrun.demo", "taskrun.__main__", "taskrun.cache_policies", "taskrun.transactions",
     "taskrun.events", "taskrun.report", "taskrun.limits", "taskrun"),
]

#: Function-level imports of taskrun modules that are allowed, and why.
LAZY_ALLOWED = {
    # `import taskrun` stays light: the process pool and Dask load on first use.
    ("taskrun", "taskrun._runners._process._runner"),
    ("taskrun", "taskrun._runners._dask._future"),
    ("taskrun.task_runners", "taskrun._runners._process._runner"),
    ("taskrun.futures", "taskrun._runners._dask._future"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    names = [base]
    # `from . import _printing` imports a submodule.
    names += [f"{base}.{alias.name}" for alias in node.names]
    return names


class _Imports(ast.NodeVisitor):
    """Collects (target, lazy) pairs; skips ``if TYPE_CHECKING:`` blocks."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module = module
        self.is_package = is_package
        self.known = known
        self.depth = 0
        self.found: list[tuple[str, bool, int]] = []

    def _add(self, names: list[str], line: int) -> None:
        for name in names:
            if name in self.known and name != self.module:
                self.found.append((name, self.depth > 0, line))

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Import(self, node: ast.Import) -> None:
        self._add([alias.name for alias in node.names], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._add(_resolve(self.module, self.is_package, node), node.lineno)


def _graph() -> dict[str, list[tuple[str, bool, int]]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.found
    return graph


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _is_parent(parent: str, child: str) -> bool:
    return child.startswith(parent + ".")


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_no_function_level_import_of_taskrun_modules_outside_the_allow_list() -> None:
    lazy = [
        f"{module}:{line} imports {target} inside a function"
        for module, imports in _graph().items()
        for target, is_lazy, line in imports
        if is_lazy and (module, target) not in LAZY_ALLOWED
    ]
    assert not lazy, "\n".join(lazy)


def test_no_import_runs_up_a_layer() -> None:
    upward = []
    for module, imports in _graph().items():
        for target, is_lazy, line in imports:
            if is_lazy or _is_parent(target, module):
                continue  # a package's __init__ runs first anyway
            if _layer(target) > _layer(module):
                upward.append(f"{module}:{line} imports {target} (layer {_layer(target)} > {_layer(module)})")
    assert not upward, "\n".join(upward)


def test_module_level_imports_have_no_cycle() -> None:
    edges = {
        module: {t for t, is_lazy, _ in imports if not is_lazy and not _is_parent(t, module)}
        for module, imports in _graph().items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("module", sorted(set(_modules()) - {"taskrun.__main__"}))
def test_each_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    _fresh(f"import {module}")


def test_import_taskrun_pulls_in_no_process_or_dask_code() -> None:
    out = _fresh(
        "import sys, taskrun\n"
        "print(sorted(m for m in sys.modules if m.startswith(('taskrun._runners._process', "
        "'taskrun._runners._dask', 'distributed', 'dask', 'cloudpickle', 'multiprocessing'))))"
    )
    assert out.strip() == "[]"
