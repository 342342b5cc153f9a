"""A run submitted from a thread other than the loop's, waiting only for unfinished
``wait_for`` futures, waits for them from the submitting thread: it reaches no loop
until its last input is final, and it is refused, or accepted, exactly as a run
handed to the loop is while the runner closes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.states import StateType

from ._loop import blocked_until, loop_held, where

pytestmark = pytest.mark.timeout(30)


def _closing(runner: ThreadPoolTaskRunner) -> None:
    """Return once ``runner`` began to close (its ``with`` block was left)."""
    dispatcher = runner._dispatcher
    assert dispatcher is not None
    deadline = time.monotonic() + 10
    while not dispatcher._closing:
        assert time.monotonic() < deadline, "the runner never began to close"
        time.sleep(0.001)


def test_links_submitted_while_the_loop_is_busy_run_when_their_upstream_ends() -> None:
    release = threading.Event()
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        head = runner.submit(blocked_until, {"event": release})
        with loop_held(runner):
            links = []
            previous: Any = head
            for i in range(50):
                previous = runner.submit(where, {"x": i}, wait_for=[previous])
                links.append(previous)
            release.set()
            results = [f.result(timeout=5) for f in links]
    assert [x for x, _ in results] == list(range(50))
    assert {name for _, name in results} == {head.result()}


def test_a_link_submitted_from_outside_while_the_runner_closes_is_refused() -> None:
    release = threading.Event()
    refused: list[BaseException] = []

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        head = runner.submit(blocked_until, {"event": release})

        def submit_late() -> None:
            try:
                _closing(runner)
                runner.submit(where, {"x": 1}, wait_for=[head])
            except RuntimeError as exc:
                refused.append(exc)
            finally:
                release.set()

        late = threading.Thread(target=submit_late)
        late.start()
    late.join(10)
    assert len(refused) == 1
    assert "Task runner is closed" in str(refused[0])
    assert head.state.type is StateType.COMPLETED


def test_a_link_a_run_submits_while_the_runner_closes_still_runs() -> None:
    release = threading.Event()
    links: list[Any] = []

    @task
    def submits_late() -> None:
        _closing(runner)
        upstream = runner.submit(blocked_until, {"event": release})
        links.append(runner.submit(where, {"x": 7}, wait_for=[upstream]))
        release.set()

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        outer = runner.submit(submits_late, {})
    assert outer.state.type is StateType.COMPLETED
    assert len(links) == 1
    assert links[0].result()[0] == 7


@pytest.mark.parametrize("inputs", [1, 3])
def test_a_link_whose_inputs_end_as_it_is_submitted_runs_once(inputs: int) -> None:
    for round_ in range(200):
        with ThreadPoolTaskRunner(max_workers=4) as runner:
            ups = [runner.submit(where, {"x": i}) for i in range(inputs)]
            link = runner.submit(where, {"x": round_}, wait_for=ups)
            assert link.result(timeout=10)[0] == round_
        assert link.state.type is StateType.COMPLETED
