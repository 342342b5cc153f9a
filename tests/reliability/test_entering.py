"""Exactly one of two threads entering a runner at once gets in (issue 14)."""

from __future__ import annotations

import threading

from taskrun import ThreadPoolTaskRunner


def _loop_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.endswith("-loop") and t.name.startswith("taskrun-"))


def test_two_threads_entering_one_runner() -> None:
    before = _loop_threads()
    doubles = 0
    for _ in range(30):
        runner = ThreadPoolTaskRunner(max_workers=1)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def enter(runner: ThreadPoolTaskRunner = runner, barrier: threading.Barrier = barrier,
                  outcomes: list[str] = outcomes) -> None:
            barrier.wait(5)
            try:
                runner.__enter__()
            except RuntimeError as exc:
                outcomes.append("refused" if "entered" in str(exc) else f"other: {exc}")
            else:
                outcomes.append("entered")

        threads = [threading.Thread(target=enter) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        if outcomes.count("entered") == 2:
            doubles += 1
        if "entered" in outcomes:
            runner.__exit__(None, None, None)
        assert sorted(outcomes) in (["entered", "refused"], ["entered", "entered"]), outcomes
    assert doubles == 0, f"both threads entered in {doubles} of 30 rounds"
    assert _loop_threads() == before
