"""A worker thread that cannot start crashes its run; the runner still closes (issue 14)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task

from ._helpers import within


@task
def body() -> int:
    return 1


def test_cannot_start_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    real_start = threading.Thread.start

    def start(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
        if "-worker-" in self.name:
            raise RuntimeError("can't start new thread")
        real_start(self, *args, **kwargs)

    monkeypatch.setattr(threading.Thread, "start", start)

    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future = runner.submit(body, {})
            future.wait(timeout=5)
            assert future.state.is_crashed(), future.state
            assert "can't start new thread" in (future.state.message or "")

    within(15, scenario, "a runner whose worker thread cannot start")
