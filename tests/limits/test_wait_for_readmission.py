"""Runs that wait only for ``wait_for`` futures are re-admitted by a shorter path
(their parameters were found plain the first time): it must still end a run
NotReady when an input failed, drop a run cancelled while it waited, and send a
tagged run through its tag limit. One unfinished input and several take
different callbacks; both are covered."""

from __future__ import annotations

import threading
import time

import pytest

import taskrun.limits as limits
from taskrun import ThreadPoolTaskRunner, task
from taskrun.states import StateType

from ._meter import Meter

pytestmark = pytest.mark.timeout(30)

gate = threading.Event()


@task
def held(x: int) -> int:
    assert gate.wait(10), "the test never opened the gate"
    return x


@task
def held_then_fails() -> None:
    assert gate.wait(10), "the test never opened the gate"
    raise ValueError("upstream broke")


ran: list[int] = []


@task
def record(x: int) -> int:
    ran.append(x)
    return x


@pytest.fixture(autouse=True)
def closed_gate() -> None:
    gate.clear()
    ran.clear()


@pytest.mark.parametrize("inputs", [1, 2])
def test_an_input_that_failed_while_it_waited_ends_it_not_ready(inputs: int) -> None:
    with ThreadPoolTaskRunner(max_workers=4):
        waits = [held_then_fails.submit()] + [held.submit(i) for i in range(inputs - 1)]
        downstream = record.submit(1, wait_for=waits)
        gate.set()
        downstream.wait(10)
    assert downstream.state.name == "NotReady"
    assert "held_then_fails" in (downstream.state.message or "")
    assert ran == []


@pytest.mark.parametrize("inputs", [1, 2])
def test_a_run_cancelled_while_it_waited_never_runs(inputs: int) -> None:
    with ThreadPoolTaskRunner(max_workers=4):
        waits = [held.submit(i) for i in range(inputs)]
        downstream = record.submit(1, wait_for=waits)
        downstream.cancel()
        gate.set()
        assert [f.result() for f in waits] == list(range(inputs))
        downstream.wait(10)
    assert downstream.state.type is StateType.CANCELLED
    assert ran == []


@pytest.mark.parametrize("inputs", [1, 2])
def test_a_tagged_run_readmitted_after_its_inputs_takes_its_tag_limit(inputs: int) -> None:
    limits.set("tag:one-at-a-time", 1)
    meter = Meter()

    @task(tags=["one-at-a-time"])
    def limited(x: int) -> int:
        meter.enter()
        time.sleep(0.02)
        meter.exit()
        return x

    with ThreadPoolTaskRunner(max_workers=8):
        waits = [held.submit(i) for i in range(inputs)]
        downstream = [limited.submit(i, wait_for=waits) for i in range(6)]
        gate.set()
        assert [f.result() for f in downstream] == list(range(6))
    assert meter.high == 1
