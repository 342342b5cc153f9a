from __future__ import annotations

import threading
import time

import pytest


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leaves_threads: the test deliberately leaves a thread stuck in user code"
    )
