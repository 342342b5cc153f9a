from __future__ import annotations

import datetime
import io
import os
import pathlib
import subprocess
import sys
import time

from taskrun._results._cli import main
from taskrun._results._service import results_config_from_options
from taskrun._results._storage import LocalStorage
from taskrun.cache_policies import INPUTS

from ._views import View, double, view


def fill(home: pathlib.Path) -> tuple[str, str]:
    keep = results_config_from_options(cache_policy=INPUTS)
    short = results_config_from_options(cache_policy=INPUTS,
                                        cache_expiration=datetime.timedelta(seconds=0.05))
    assert keep is not None and short is not None
    k1 = keep.begin(view(x=1))
    k1.store(2)
    other = View(task_fn=double, parameters={"x": 2}, task_name="other")
    k2 = short.begin(other)
    k2.store(4)
    time.sleep(0.1)
    return k1.key, k2.key


def run_cli(home: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taskrun", "cache", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "TASKRUN_HOME": str(home)})


def test_ls_in_a_subprocess(home: pathlib.Path) -> None:
    k1, k2 = fill(home)
    out = run_cli(home, "ls")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row1 = next(line for line in lines if line.startswith(k1))
    row2 = next(line for line in lines if line.startswith(k2))
    assert "double" in row1 and "never" in row1 and " B" in row1
    assert "other" in row2 and "(expired)" in row2
    assert lines[-1].startswith("2 record(s)")


def test_show_and_missing_key(home: pathlib.Path) -> None:
    k1, _ = fill(home)
    out = io.StringIO()
    assert main(["show", k1], out=out) == 0
    text = out.getvalue()
    assert "task:       double" in text and "value:      2" in text and "serializer: pickle" in text
    assert main(["show", "nope"], out=io.StringIO()) == 1


def test_show_corrupt_record(home: pathlib.Path) -> None:
    k1, _ = fill(home)
    path = LocalStorage(home / "results").path(k1)
    path.write_bytes(path.read_bytes()[:-1])
    out = io.StringIO()
    assert main(["show", k1], out=out) == 1
    assert "corrupt" in out.getvalue()


def test_clear_expired_then_by_task_then_all(home: pathlib.Path) -> None:
    k1, _k2 = fill(home)
    store = LocalStorage(home / "results")
    out = io.StringIO()
    assert main(["clear", "--expired"], out=out) == 0
    assert "removed 1 record" in out.getvalue() and list(store.list()) == [k1]
    assert main(["clear", "--task", "other"], out=io.StringIO()) == 0
    assert list(store.list()) == [k1]
    assert main(["clear", "--task", "double"], out=io.StringIO()) == 0
    assert list(store.list()) == []


def test_storage_option_and_usage_errors(tmp_path: pathlib.Path, home: pathlib.Path) -> None:
    LocalStorage(tmp_path / "elsewhere").write("k", b"junk")
    out = io.StringIO()
    assert main(["--storage", str(tmp_path / "elsewhere"), "ls"], out=out) == 0
    assert "corrupt" in out.getvalue()
    assert main(["bogus"], out=io.StringIO()) == 2
    result = run_cli(home)
    assert result.returncode == 2
    top = subprocess.run([sys.executable, "-m", "taskrun", "nope"], capture_output=True, text=True,
                         timeout=60)
    assert top.returncode == 2 and "unknown command" in top.stderr
