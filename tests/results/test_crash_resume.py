"""THE CRASH TEST: a script maps 10,000 cached tasks, is SIGKILLed part-way, is run again,
and exactly the runs without a record execute the second time; every value is right and
no torn record is ever read (the re-run counts CorruptRecordWarnings: none)."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from taskrun._results._records import decode_record
from taskrun._results._storage import LocalStorage

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "resumable_map.py"
N = 10_000


@pytest.fixture
def workdir(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    # tmpfs when there is one: fsync is free there, so 10,000 writes fit the time budget;
    # the atomic rename, which is what a kill tests, is the same on every POSIX filesystem.
    shm = pathlib.Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="taskrun-crash-") as d:
            yield pathlib.Path(d)
    else:
        yield tmp_path


def _lines(path: pathlib.Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


def _recorded(store: pathlib.Path) -> set[int]:
    """Inputs with a whole record in the store; a torn one fails the test."""
    storage = LocalStorage(store)
    done = set()
    for key in storage.list():
        data = storage.read(key)
        assert data is not None
        _, payload = decode_record(data)  # raises CorruptRecord on a torn record
        value = pickle.loads(payload)
        assert value == {"x": value["x"], "y": value["x"] ** 2 + 1}
        done.add(value["x"])
    return done


def test_killed_map_resumes_running_exactly_the_unfinished_runs(workdir: pathlib.Path) -> None:
    store, marks1, marks2, out = (workdir / n for n in ("store", "marks1", "marks2", "out.json"))
    cmd = [sys.executable, str(SCRIPT), str(store)]
    first = subprocess.Popen([*cmd, str(marks1), str(out), str(N)])
    try:
        deadline = time.monotonic() + 60
        while len(_lines(marks1)) < N // 4:
            assert first.poll() is None, "the script ended before it was killed"
            assert time.monotonic() < deadline, "the script made no progress"
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert first.returncode == -signal.SIGKILL and not out.exists()
    executed1 = set(_lines(marks1))
    recorded = _recorded(store)
    assert 0 < len(recorded) < N
    assert recorded <= executed1  # a record only for a body that ran

    second = subprocess.run([*cmd, str(marks2), str(out), str(N)], timeout=90)
    assert second.returncode == 0
    executed2 = _lines(marks2)
    assert len(executed2) == len(set(executed2))  # nothing ran twice
    assert set(executed2) == set(range(N)) - recorded  # exactly the unfinished runs
    result = json.loads(out.read_text())
    assert result["corrupt"] == 0
    assert result["values"] == [{"x": x, "y": x * x + 1} for x in range(N)]
    assert _recorded(store) == set(range(N))
