"""The public import surface: every name importable from where the contract says.

``ProcessPoolTaskRunner``, ``DistributedFuture`` and ``taskrun.dask`` are left out
here (tested with their runners).
"""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import types

import pytest

import taskrun

TOP_LEVEL = [
    "task", "Task", "flow", "Flow",
    "TaskRunner", "ThreadPoolTaskRunner",
    "TaskFuture", "ConcurrentFuture", "FutureList",
    "wait", "as_completed", "wait_async", "as_completed_async",
    "resolve_futures_to_states", "resolve_futures_to_results",
    "unmapped", "allow_failure", "quote", "opaque",
    "State", "StateType", "tags", "get_run_context", "get_run_logger",
]

SUBMODULES = {
    "taskrun.task_runners": ["TaskRunner", "ThreadPoolTaskRunner"],
    "taskrun.futures": ["TaskFuture", "ConcurrentFuture", "FutureList"],
    "taskrun.states": ["State", "StateType", "Pending", "Running", "Completed", "Failed", "Crashed",
                       "Cancelled"],
    "taskrun.annotations": ["unmapped", "allow_failure", "quote", "opaque"],
    "taskrun.exceptions": ["TaskRunError", "UpstreamTaskError", "MappingLengthMismatch",
                           "MappingMissingIterable", "TaskRunTimeout", "CancelledRun", "CrashedRun",
                           "ParameterBindError"],
}

EXCLUDED = {"ProcessPoolTaskRunner", "DistributedFuture"}


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_name_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from taskrun import {name}", namespace)
    assert namespace[name] is getattr(taskrun, name)


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in SUBMODULES.items() for n in names]
)
def test_submodule_name_importable(module: str, name: str) -> None:
    mod = importlib.import_module(module)
    namespace: dict[str, object] = {}
    exec(f"from {module} import {name}", namespace)
    assert namespace[name] is getattr(mod, name)


def test_top_level_and_submodule_objects_are_the_same() -> None:
    from taskrun import annotations, futures, states, task_runners

    assert taskrun.TaskRunner is task_runners.TaskRunner
    assert taskrun.ThreadPoolTaskRunner is task_runners.ThreadPoolTaskRunner
    assert taskrun.TaskFuture is futures.TaskFuture
    assert taskrun.ConcurrentFuture is futures.ConcurrentFuture
    assert taskrun.FutureList is futures.FutureList
    assert taskrun.State is states.State
    assert taskrun.StateType is states.StateType
    for name in ("unmapped", "allow_failure", "quote", "opaque"):
        assert getattr(taskrun, name) is getattr(annotations, name)


def test_class_relationships() -> None:
    from taskrun.exceptions import (
        CancelledRun,
        CrashedRun,
        MappingLengthMismatch,
        MappingMissingIterable,
        ParameterBindError,
        TaskRunError,
        TaskRunTimeout,
        UpstreamTaskError,
    )

    assert issubclass(taskrun.ThreadPoolTaskRunner, taskrun.TaskRunner)
    assert issubclass(taskrun.ConcurrentFuture, taskrun.TaskFuture)
    assert issubclass(taskrun.FutureList, list)
    assert inspect.isabstract(taskrun.TaskRunner)
    assert inspect.isabstract(taskrun.TaskFuture)
    for exc in (UpstreamTaskError, MappingLengthMismatch, MappingMissingIterable, TaskRunTimeout,
                CancelledRun, CrashedRun, ParameterBindError):
        assert issubclass(exc, TaskRunError)
    assert issubclass(TaskRunTimeout, TimeoutError)


def test_all_has_no_duplicates_and_every_entry_resolves() -> None:
    assert len(taskrun.__all__) == len(set(taskrun.__all__))
    for name in taskrun.__all__:
        assert hasattr(taskrun, name), name


def test_all_lists_the_import_surface() -> None:
    missing = set(TOP_LEVEL) - set(taskrun.__all__)
    assert not missing


def test_all_matches_public_objects_defined_by_taskrun() -> None:
    """Every public non-module object of ``taskrun`` that comes from taskrun itself is in __all__."""
    exported = set()
    for name, value in vars(taskrun).items():
        if name.startswith("_") or isinstance(value, types.ModuleType) or name in EXCLUDED:
            continue
        module = getattr(value, "__module__", None) or ""
        if module == "taskrun" or module.startswith("taskrun."):
            exported.add(name)
    assert exported - set(taskrun.__all__) == set()
    assert set(taskrun.__all__) - EXCLUDED - exported == set()


def test_star_import_gives_the_surface() -> None:
    namespace: dict[str, object] = {}
    exec("from taskrun import *", namespace)
    for name in TOP_LEVEL:
        assert namespace[name] is getattr(taskrun, name)


def test_py_typed_marker_exists() -> None:
    marker = importlib.resources.files("taskrun") / "py.typed"
    assert marker.is_file()


def test_lazily_imported_runners_and_futures() -> None:
    """The names loaded on first use import from every place the contract names."""
    namespace: dict[str, object] = {}
    exec(
        "from taskrun import ProcessPoolTaskRunner, DistributedFuture\n"
        "from taskrun.task_runners import ProcessPoolTaskRunner as P2\n"
        "from taskrun.futures import DistributedFuture as D2\n"
        "from taskrun.dask import DaskTaskRunner\n",
        namespace,
    )
    assert namespace["ProcessPoolTaskRunner"] is namespace["P2"]
    assert namespace["DistributedFuture"] is namespace["D2"]
    assert issubclass(namespace["ProcessPoolTaskRunner"], taskrun.TaskRunner)  # type: ignore[arg-type]
    assert issubclass(namespace["DaskTaskRunner"], taskrun.TaskRunner)  # type: ignore[arg-type]
    assert issubclass(namespace["DistributedFuture"], taskrun.TaskFuture)  # type: ignore[arg-type]
    assert taskrun.ProcessPoolTaskRunner().name == "processpool"
