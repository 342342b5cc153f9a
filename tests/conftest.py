from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from taskrun._engine import _logging as _taskrun_logging

_TASKRUN_LOGGERS = ("taskrun", "taskrun.task_runs", "taskrun.flow_runs")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs once on asyncio and once on trio."""
    return request.param  # type: ignore[no-any-return]


def _taskrun_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("taskrun-") and t.is_alive()}


@pytest.fixture(autouse=True)
def no_leaked_threads(request: pytest.FixtureRequest):
    """Fail a test that leaves a runner thread behind (loop host or worker)."""
    before = _taskrun_threads()
    yield
    if request.node.get_closest_marker("leaves_threads"):
        return
    deadline = time.monotonic() + 5
    leaked = _taskrun_threads() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.01)
        leaked = {t for t in leaked if t.is_alive()}
    assert not leaked, f"threads outlived their runner: {sorted(t.name for t in leaked)}"


@pytest.fixture(autouse=True)
def taskrun_logging_as_it_was() -> Iterator[None]:
    """Each test starts with taskrun's loggers as the one before found them.

    taskrun installs its stderr handler once per process (and stops propagation
    with it), the first time a run logs with no logging configured: whichever
    test did that first would otherwise hide later tests' records from caplog.
    """
    saved = [(lg, lg.level, lg.propagate, list(lg.handlers))
             for lg in map(logging.getLogger, _TASKRUN_LOGGERS)]
    installed = _taskrun_logging._default_handler_installed
    yield
    for lg, level, propagate, handlers in saved:
        lg.setLevel(level)
        lg.propagate = propagate
        lg.handlers[:] = handlers
    _taskrun_logging._default_handler_installed = installed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leaves_threads: the test deliberately leaves a thread stuck in user code"
    )
