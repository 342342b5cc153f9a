"""Process pool faults: odd exceptions are ordinary failures; workers die with their parent (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from taskrun import ProcessPoolTaskRunner, task

pytestmark = pytest.mark.timeout(90)


class RaisingStr(Exception):
    def __str__(self) -> str:
        raise ValueError("no text")


class UnpicklableRaisingStr(Exception):
    def __init__(self) -> None:
        super().__init__()
        self.handle = lambda: None  # cannot be pickled

    def __str__(self) -> str:
        raise ValueError("no text")


@task
def raise_str() -> None:
    raise RaisingStr()


@task
def raise_unpicklable() -> None:
    raise UnpicklableRaisingStr()


@task
def fine() -> int:
    return 5


def test_raising_str_exceptions_are_failures_and_the_worker_lives() -> None:
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        first = runner.submit(raise_str, {})
        second = runner.submit(raise_unpicklable, {})
        third = runner.submit(fine, {})
        for f in (first, second, third):
            f.wait(timeout=60)
        assert first.state.name == "Failed", first.state
        assert "RaisingStr" in (first.state.message or "")
        assert second.state.name == "Failed", second.state
        assert "UnpicklableRaisingStr" in (second.state.message or "")
        assert third.result() == 5


SCRIPT = """
import os, sys, time
from taskrun import ProcessPoolTaskRunner, task

@task
def hold(path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(60)

if __name__ == "__main__":
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        runner.map(hold, {"path": [sys.argv[1]] * 2})
        time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_soon_after_the_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(SCRIPT))
    pids_file = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, str(script), str(pids_file)])
    try:
        deadline = time.monotonic() + 60
        pids: list[int] = []
        while time.monotonic() < deadline:
            if pids_file.exists():
                pids = [int(line) for line in pids_file.read_text().split()]
                if len(pids) == 2:
                    break
            time.sleep(0.05)
        assert len(pids) == 2, "the workers never started their runs"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        killed_at = time.monotonic()
        while any(_alive(p) for p in pids) and time.monotonic() - killed_at < 10:
            time.sleep(0.05)
        took = time.monotonic() - killed_at
        survivors = [p for p in pids if _alive(p)]
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"workers {survivors} outlived their parent by 10 s"
    assert took < 2.0, f"workers took {took:.2f} s to exit after their parent died"
