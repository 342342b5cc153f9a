from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import taskrun.limits as limits
from taskrun._limits import _machine, concurrency, rate_limit
from taskrun._limits._machine import HEARTBEAT, try_acquire

HOLDER = """
import sys, time
from taskrun._limits import concurrency
with concurrency("m"):
    print("held", flush=True)
    time.sleep(60)
"""

WORKER = """
import sys, time
from taskrun._limits import concurrency
out = open(sys.argv[1], "a")
for _ in range(15):
    with concurrency("m"):
        start = time.time()
        time.sleep(0.01)
        out.write(f"{start} {time.time()}\\n")
        out.flush()
"""

RATE = """
import sys, time
from taskrun._limits import rate_limit
out = open(sys.argv[1], "a")
for _ in range(8):
    rate_limit("r")
    out.write(f"{time.time()}\\n")
    out.flush()
"""


@pytest.fixture
def machine_env(isolated_limits: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("TASKRUN_LIMITS", "m=2@machine,one=1@machine,r=10/s@machine")
    monkeypatch.setenv("TASKRUN_LIMITS_LEASE_TTL", "1")
    limits.reload()
    return dict(os.environ)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        if p.stdout is not None:
            p.stdout.close()


def spawn(
    procs: list[subprocess.Popen[str]], env: dict[str, str], code: str, *args: str
) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, text=True)
    procs.append(p)
    return p


def max_overlap(lines: list[str]) -> int:
    events = []
    for line in lines:
        start, end = map(float, line.split())
        events += [(start, 1), (end, -1)]
    now = high = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        now += step
        high = max(high, now)
    return high


def test_processes_share_a_machine_limit(
    machine_env: dict[str, str], procs: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    log = tmp_path / "intervals"
    workers = [spawn(procs, machine_env, WORKER, str(log)) for _ in range(4)]
    for w in workers:
        assert w.wait(60) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 60
    assert max_overlap(lines) == 2


def test_sigkilled_holder_slots_come_back_after_the_ttl(
    machine_env: dict[str, str], procs: list[subprocess.Popen[str]]
) -> None:
    env = {**machine_env, "TASKRUN_LIMITS": "m=1@machine"}
    limits.set("m", 1, scope="machine")  # the holder's definition
    holder = spawn(procs, env, HOLDER)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    time.sleep(2.5)  # longer than the 1 s TTL: the holder's heartbeat keeps its lease alive
    assert try_acquire([("m", 1)], 1) is None
    with pytest.raises(TimeoutError, match="'m'"):
        with concurrency("one"), concurrency("m", timeout_seconds=0.2):
            pass
    killed_at = time.monotonic()
    holder.send_signal(signal.SIGKILL)
    holder.wait(5)
    with concurrency("m", timeout_seconds=5):
        waited = time.monotonic() - killed_at
        assert HEARTBEAT.held() >= 1
    assert waited <= 1.5
    assert HEARTBEAT.held() == 0


def test_heartbeat_thread_stops_when_nothing_is_held(machine_env: dict[str, str]) -> None:
    import threading

    with concurrency(["m", "one"]):
        assert any(t.name == "taskrun-limits-heartbeat" for t in threading.enumerate())
    deadline = time.monotonic() + 2
    while any(t.name == "taskrun-limits-heartbeat" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.anyio
async def test_async_machine_limit_waits_and_cancels(machine_env: dict[str, str]) -> None:
    async with concurrency("one"):
        with anyio.move_on_after(0.1) as scope:
            async with concurrency("one"):
                pytest.fail("the machine slot was held")
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError, match="'one'"):
            async with concurrency("one", timeout_seconds=0.05):
                pass
    with anyio.fail_after(2):
        async with concurrency("one"):
            pass
    assert HEARTBEAT.held() == 0


def test_machine_rate_limit_across_processes(
    machine_env: dict[str, str], procs: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    log = tmp_path / "stamps"
    rate_limit("r", occupy=10)  # empty the shared bucket first
    start = time.time()
    workers = [spawn(procs, machine_env, RATE, str(log)) for _ in range(3)]
    for w in workers:
        assert w.wait(30) == 0
    stamps = sorted(float(x) for x in log.read_text().split())
    assert len(stamps) == 24
    assert stamps[0] >= start
    # a token bucket of 10 draining 10/s, shared by all three: in any window of T seconds at
    # most 10 + 10 T calls go through (with a little room for clock reads)
    for i in range(len(stamps)):
        for j in range(i + 1, len(stamps)):
            assert j - i + 1 <= 10 + 10 * (stamps[j] - stamps[i]) + 0.5, (i, j)


@pytest.mark.timeout(60)
def test_many_connections_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    # Switching a new database to write-ahead logging answers "database is
    # locked" at once when another connection is switching it too.
    failures: list[BaseException] = []
    for round_ in range(40):
        path = tmp_path / f"round-{round_}.sqlite"
        start = threading.Barrier(8)

        def open_one(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait(10)
            try:
                _machine._open(path).close()
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert failures == []
