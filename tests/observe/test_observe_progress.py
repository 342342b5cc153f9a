from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fakes import make_runs, play

from taskrun._observe._progress import Progress, progress_from_env

SCRIPT = Path(__file__).with_name("_progress_script.py")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRUN_")}
    env.update({"COLUMNS": "120", "LINES": "30", "TERM": "xterm-256color"}, **extra)
    env.pop("NO_COLOR", None)
    return env


def _run_in_pty(args: list[str], timeout: float = 30.0) -> str:
    """Run the script with a pseudo-terminal as its stdout; return what the terminal got."""
    return _run_in_pty_script(SCRIPT, args, {}, timeout)


def _run_in_pty_script(script: Path, args: list[str], env: dict[str, str], timeout: float = 30.0) -> str:
    """Run ``script`` with a pseudo-terminal as its stdout; return what the terminal got."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(sys.executable, [sys.executable, str(script), *args], _env(**env))
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_live_bars_on_a_terminal() -> None:
    pytest.importorskip("rich", reason="the live display needs the progress extra (rich)")
    raw = _run_in_pty(["auto", "0.2"])
    screen = ANSI.sub("", raw).replace("\r", "\n")
    assert "mode=live" in screen
    assert "\x1b[" in raw, "a live display redraws with terminal control sequences"
    assert "━" in screen, "rich draws bar segments"
    final_fetch = [line for line in screen.splitlines() if "fetch" in line and "27/30 done" in line]
    assert final_fetch, screen[-2000:]
    assert "3 failed" in final_fetch[-1] and "0 running" in final_fetch[-1] and "ETA 0 s" in final_fetch[-1]
    assert re.search(r"parse .*5/5 done", screen)
    assert re.search(r"fetch .*4 running", screen), "the middle of the run shows running runs"
    assert re.search(r"\d+\.\d/s", screen)
    assert "taskrun: fetch" not in screen, "no plain lines on a terminal"


def test_plain_lines_when_stdout_is_not_a_terminal() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "auto", "0.2"], capture_output=True, text=True,
                         timeout=60, env=_env(), check=True).stdout
    lines = out.splitlines()
    assert lines[-1] == "mode=plain"
    progress = [line for line in lines if line.startswith("taskrun: ")]
    assert len(progress) >= 2
    pattern = re.compile(r"^taskrun: fetch (\d+)/30 done, (\d+) failed, (\d+) running, [\d.]+/s, ETA .+")
    assert all(pattern.match(line) for line in progress), progress
    assert "4 running" in "\n".join(progress[:-1]), "a middle line shows the running runs"
    assert progress[-1].startswith("taskrun: fetch 27/30 done, 3 failed, 0 running, ")
    assert "ETA 0 s; parse 5/5 done, 0 failed, 0 running" in progress[-1]
    assert "\x1b[" not in out


def test_silent_when_disabled_and_enabled_by_the_environment() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "env", "0.2"], capture_output=True, text=True,
                         timeout=60, env=_env(), check=True).stdout
    assert out.strip() == "mode=off"
    out = subprocess.run([sys.executable, str(SCRIPT), "env", "0.2"], capture_output=True, text=True,
                         timeout=60, env=_env(TASKRUN_PROGRESS="1"), check=True).stdout
    assert "taskrun: fetch 27/30 done" in out
    assert progress_from_env({"TASKRUN_PROGRESS": "yes"}) and not progress_from_env({})


def test_line_counts_and_add_total() -> None:
    stream = io.StringIO()
    with Progress(enabled=True, stream=stream, interval=60) as progress:
        progress.add_total("t", 10)
        for j, run in enumerate(make_runs("t", 4)):
            play(run, fail=(j == 0))
    assert progress.mode == "plain"
    last = stream.getvalue().splitlines()[-1]
    assert re.match(r"taskrun: t 3/10 done, 1 failed, 0 running, [\d.]+/s, ETA \d+ s$", last), last


@pytest.mark.anyio
async def test_async_with() -> None:
    stream = io.StringIO()
    async with Progress({"t": 2}, enabled=True, stream=stream, interval=60):
        for run in make_runs("t", 2):
            play(run)
    assert stream.getvalue().startswith("taskrun: t 2/2 done, 0 failed")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"total_by_task\['t'\] must be an int"):
        Progress({"t": -1})
    with pytest.raises(ValueError, match="interval must be"):
        Progress(interval=0)
    with pytest.raises(ValueError, match="count must be"):
        Progress().add_total("t", -3)
