from __future__ import annotations

import pathlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A fresh TASKRUN_HOME for the test."""
    monkeypatch.setenv("TASKRUN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TASKRUN_REFRESH_CACHE", raising=False)
    return tmp_path / "home"



@pytest.fixture
def marks(tmp_path: pathlib.Path) -> str:
    """A directory where test task bodies leave a file per execution."""
    path = tmp_path / "marks"
    path.mkdir()
    return str(path)


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    """A result-store directory for the test (not created yet)."""
    return tmp_path / "store"

# --- a real S3 API: moto's standalone server on loopback -------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    try:
        import moto  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the S3 tests need moto[server] and s3fs (pip install -e '.[test]'): {exc}")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start on 127.0.0.1:{port} (exit {proc.poll()})")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, Any]]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    options: dict[str, Any] = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing",
                               "skip_instance_cache": True}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"taskrun-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    yield bucket, options
    fs.rm(bucket, recursive=True)


# --- a real Dask cluster on loopback (worker processes) ------------------------------------------------

@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    try:
        import distributed
    except ImportError as exc:
        pytest.fail(f"the Dask tests need distributed (pip install -e '.[test]'): {exc}")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        yield str(cluster.scheduler_address)
