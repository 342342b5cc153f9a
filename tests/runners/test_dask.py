"""DaskTaskRunner and DistributedFuture, on real clusters (LocalCluster and subprocesses)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from taskrun import (  # noqa: E402
    DistributedFuture,
    allow_failure,
    flow,
    get_run_context,
    get_run_logger,
    tags,
    task,
)
from taskrun.dask import DaskTaskRunner  # noqa: E402
from taskrun.exceptions import CancelledRun, CrashedRun, TaskRunTimeout, UpstreamTaskError  # noqa: E402

pytestmark = pytest.mark.timeout(90)

HERE = Path(__file__).resolve().parent
PARENT_PID = os.getpid()


class Boom(Exception):
    pass


# ----------------------------------------------------------------------------- tasks


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def where() -> int:
    return os.getpid()


@task
async def inc_async(x: int) -> int:
    await asyncio.sleep(0.01)
    return x + 1


@task
def fail(message: str = "nope") -> None:
    raise Boom(message)


@task
def big(n: int) -> bytes:
    return b"x" * n


@task
def size(data: bytes) -> int:
    return len(data)


@task
def describe() -> dict[str, Any]:
    ctx = get_run_context()
    assert ctx is not None
    get_run_logger().info("hello from %s", ctx.task_run_name)
    return {"id": ctx.task_run_id, "tags": set(ctx.tags), "attempt": ctx.attempt, "pid": os.getpid()}


@task(retries=2)
def flaky(until: int) -> int:
    ctx = get_run_context()
    assert ctx is not None
    if ctx.attempt < until:
        raise Boom(f"attempt {ctx.attempt}")
    return ctx.attempt


@task(timeout_seconds=0.3)
def too_slow() -> None:
    time.sleep(3)


@task
def wait_for_cancel(marker: str) -> str:
    ctx = get_run_context()
    assert ctx is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if ctx.cancel_requested():
            Path(marker).write_text("seen")
            return "stopped"
        time.sleep(0.01)
    return "never cancelled"


@task
def kill_worker_once(marker: str) -> int:
    if not Path(marker).exists():
        Path(marker).write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@task
def kill_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@task
def give_lock() -> Any:
    return threading.Lock()


def record_pid(task: Any, run: Any, state: Any) -> None:
    get_run_logger().info("hook ran in %d", os.getpid())


# ----------------------------------------------------------------------------- clusters


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One LocalCluster (2 workers x 1 thread) shared by the tests that use address=."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local:
        yield local


@pytest.fixture
def address(cluster: Any) -> str:
    return str(cluster.scheduler_address)


def _task_state(dask_scheduler: Any, key: str) -> str | None:
    ts = dask_scheduler.tasks.get(key)
    return None if ts is None else str(ts.state)


def _http_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _dask_cli() -> str:
    """The `dask` command of this environment."""
    here = Path(sys.executable).with_name("dask")
    return str(here) if here.exists() else "dask"


@contextlib.contextmanager
def subprocess_cluster(**env: str) -> Iterator[str]:
    """`dask scheduler` and `dask worker` as subprocesses on 127.0.0.1; always stopped."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    environment = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    scheduler = subprocess.Popen(
        [_dask_cli(), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [_dask_cli(), "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "2",
             "--no-dashboard"],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=30)
        yield address
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)


# ----------------------------------------------------------------------------- the extra


def test_import_without_the_extra_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from taskrun import DistributedFuture\n"  # the future class needs no Dask
        "try:\n"
        "    import taskrun.dask\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'taskrun[dask]'" in out.stdout


def test_configuration() -> None:
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1})
    assert runner.name == "dask"
    assert runner.duplicate() == runner and runner.duplicate() is not runner
    assert runner != DaskTaskRunner(cluster_kwargs={"n_workers": 2})
    assert DaskTaskRunner(address="tcp://127.0.0.1:1") == DaskTaskRunner(address="tcp://127.0.0.1:1")
    assert hash(runner) == hash(runner.duplicate())
    with pytest.raises(ValueError, match="either address"):
        DaskTaskRunner(address="tcp://127.0.0.1:1", cluster_kwargs={"n_workers": 1})
    with pytest.raises(RuntimeError, match="not started"):
        runner.submit(inc, {"x": 1})


# ----------------------------------------------------------------------------- clusters it runs on


def test_embedded_local_cluster_is_loopback_dashboardless_and_closed_on_exit() -> None:
    embedded = DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": 1, "threads_per_worker": 1})
    with embedded as runner:
        client = runner.client
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        http = client.cluster.scheduler.http_server  # health and metrics only
        assert http.address == "127.0.0.1"
        assert _http_status(f"http://127.0.0.1:{http.port}/health") == 200
        assert _http_status(f"http://127.0.0.1:{http.port}/status") == 404  # no dashboard
        assert runner.submit(inc, {"x": 1}).result() == 2
        cluster = client.cluster
    assert cluster.status.name == "closed"


def test_address_connects_and_leaves_the_scheduler_running(address: str) -> None:
    with DaskTaskRunner(address=address) as runner:
        assert runner.submit(where, {}).result() != PARENT_PID
    with distributed.Client(address) as client:
        assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.timeout(120)
def test_flow_on_subprocess_scheduler_and_worker_with_a_killed_worker(tmp_path: Path) -> None:
    # Dask may not retry here: a killed worker ends its run Crashed at once.
    with subprocess_cluster(DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0") as address:

        @flow(task_runner=DaskTaskRunner(address=address))
        def pipeline() -> dict[str, Any]:
            summed = total.submit(inc.map(range(4))).result()
            # Killing the worker kills whatever runs on it, so the victim runs alone.
            doomed = kill_worker.submit()
            after = inc.submit(doomed)
            doomed.wait()
            after.wait()
            # The nanny restarts the worker; later runs go on.
            again = inc.submit(summed)
            return {"sum": summed, "again": again, "doomed": doomed.state, "after": after.state}

        out = pipeline()
    assert out["sum"] == 10 and out["again"] == 11
    assert out["doomed"].is_crashed()
    assert "worker running it died" in out["doomed"].message
    assert out["after"].name == "NotReady"


def test_a_killed_worker_is_retried_elsewhere_when_dask_allows(address: str, tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    with DaskTaskRunner(address=address) as runner:
        future = runner.submit(kill_worker_once, {"marker": str(marker)})
        assert future.result() != PARENT_PID
    assert marker.exists()


# ----------------------------------------------------------------------------- futures


def test_results_states_equality_and_pickling(address: str) -> None:
    with DaskTaskRunner(address=address) as runner:
        future = runner.submit(inc, {"x": 1})
        assert isinstance(future, DistributedFuture)
        future.wait()
        assert future.state.is_completed() and future.result() == 2
        assert isinstance(future.wrapped_future, distributed.Future)
        copy = pickle.loads(pickle.dumps(future))
        assert copy == future and hash(copy) == hash(future)
        assert copy.result(timeout=30) == 2
        assert {future, copy} == {future}
        assert future != runner.submit(inc, {"x": 1})


@pytest.mark.timeout(120)
def test_an_unpickled_future_works_in_another_process(address: str, tmp_path: Path) -> None:
    blob = tmp_path / "future.pickle"
    code = (
        "import asyncio, pickle, sys, trio\n"
        f"future = pickle.loads(open({str(blob)!r}, 'rb').read())\n"
        "print('result', future.result(timeout=30))\n"
        "async def main():\n"
        "    return await future\n"
        "print('asyncio', asyncio.run(main()))\n"
        "print('trio', trio.run(main))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    with DaskTaskRunner(address=address) as runner:
        future = runner.submit(inc, {"x": 41})
        blob.write_bytes(pickle.dumps(future))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=90, env=env)
        assert future.result() == 42
    assert out.returncode == 0, out.stderr
    assert "result 42" in out.stdout and "asyncio 42" in out.stdout and "trio 42" in out.stdout


@pytest.mark.anyio
async def test_await_from_async_code(address: str) -> None:
    async with DaskTaskRunner(address=address) as runner:
        plain = runner.submit(inc, {"x": 1})
        coroutine = runner.submit(inc_async, {"x": plain})
        assert await coroutine == 3
        assert await runner.map(inc, {"x": [1, 2, 3]}).result_async() == [2, 3, 4]
        failing = runner.submit(fail, {})
        with pytest.raises(Boom):
            await failing


# ----------------------------------------------------------------------------- inputs


def test_a_future_parameter_is_a_dask_dependency(address: str) -> None:
    with DaskTaskRunner(address=address) as runner:
        data = runner.submit(big, {"n": 2_000_000})
        measured = runner.submit(size, {"data": data})
        assert measured.result() == 2_000_000
        key = measured.wrapped_future.key

        def dependencies(dask_scheduler: Any, key: str = key) -> list[str]:
            return [d.key for d in dask_scheduler.tasks[key].dependencies]

        assert runner.client.run_on_scheduler(dependencies) == [data.wrapped_future.key]
        # The client sent a small payload, not the 2 MB upstream value.
        spec = runner.client.run_on_scheduler(
            lambda dask_scheduler, key=key: len(pickle.dumps(dask_scheduler.tasks[key].run_spec))
        )
        assert spec < 100_000


def test_nested_futures_wait_for_and_the_upstream_rule(address: str) -> None:
    with DaskTaskRunner(address=address) as runner:
        values = runner.map(inc, {"x": [1, 2, 3]})
        summed = runner.submit(total, {"xs": values})
        bad = runner.submit(fail, {"message": "upstream broke"})
        blocked = runner.submit(inc, {"x": bad})
        waiting = runner.submit(inc, {"x": 1}, wait_for=[bad])
        allowed = runner.submit(describe, {}, wait_for=[allow_failure(bad)])
        assert summed.result() == 9
        blocked.wait()
        waiting.wait()
        assert blocked.state.name == "NotReady" and waiting.state.name == "NotReady"
        with pytest.raises(UpstreamTaskError, match="upstream broke"):
            blocked.result()
        assert allowed.result()["attempt"] == 1


def test_futures_of_another_runner_are_waited_for_then_passed_by_value(address: str) -> None:
    from taskrun import ThreadPoolTaskRunner

    with ThreadPoolTaskRunner(max_workers=1) as local, DaskTaskRunner(address=address) as runner:
        slow = local.submit(inc.with_options(name="local_inc"), {"x": 10})
        remote = runner.submit(inc, {"x": slow})
        chained = runner.submit(inc, {"x": remote})
        assert chained.result() == 13


def test_unpicklable_parameter_and_result(address: str) -> None:
    with DaskTaskRunner(address=address) as runner:
        bad_input = runner.submit(inc, {"x": threading.Lock()})
        bad_output = runner.submit(give_lock, {})
        fine = runner.submit(inc, {"x": 1})
        bad_input.wait()
        bad_output.wait()
        assert fine.result() == 2
    with pytest.raises(TypeError, match="parameter 'x' of task 'inc' cannot be pickled"):
        bad_input.result()
    with pytest.raises(TypeError, match=r"result of task run .* cannot be pickled"):
        bad_output.result()


# ----------------------------------------------------------------------------- the engine on the worker


def test_retries_timeouts_hooks_and_context_run_on_the_worker(
        address: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taskrun")
    with DaskTaskRunner(address=address) as runner, tags("nightly"):
        third = runner.submit(flaky.with_options(on_completion=[record_pid]), {"until": 3})
        never = runner.submit(flaky, {"until": 9})
        slow = runner.submit(too_slow, {})
        seen = runner.submit(describe.with_options(tags=["etl"]), {})
        assert third.result() == 3
        never.wait()
        slow.wait()
        info = seen.result()
    with pytest.raises(Boom, match="attempt 3") as caught:
        never.result()
    assert "remote traceback" in str(caught.value.__cause__)
    assert slow.state.name == "TimedOut"
    with pytest.raises(TaskRunTimeout):
        slow.result()
    assert info["id"] == seen.task_run_id and info["tags"] == {"etl", "nightly"}
    assert info["pid"] != PARENT_PID
    records = [r for r in caplog.records if r.name == "taskrun.task_runs"]
    assert any("hello from" in r.getMessage() and r.process == info["pid"] for r in records)
    hook = [r for r in records if "hook ran in" in r.getMessage()]
    assert hook and hook[0].getMessage() != f"hook ran in {PARENT_PID}"


def test_cancel_is_prompt_and_sets_the_cooperative_flag(address: str, tmp_path: Path) -> None:
    marker = tmp_path / "seen"
    with DaskTaskRunner(address=address) as runner:
        running = runner.submit(wait_for_cancel, {"marker": str(marker)})
        deadline = time.monotonic() + 30
        while runner.client.run_on_scheduler(_task_state, key=running.wrapped_future.key) != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        assert running.cancel() is True
        assert running.state.is_cancelled()
        with pytest.raises(CancelledRun):
            running.result()
        while not marker.exists():
            assert time.monotonic() < deadline, "the worker never saw cancel_requested()"
            time.sleep(0.05)


def test_dependents_of_a_cancelled_run_end_not_ready(address: str, tmp_path: Path) -> None:
    with DaskTaskRunner(address=address) as runner:
        upstream = runner.submit(wait_for_cancel, {"marker": str(tmp_path / "seen")})
        downstream = runner.submit(inc, {"x": upstream})
        allowed = runner.submit(describe, {}, wait_for=[allow_failure(upstream)])
        time.sleep(0.3)
        assert upstream.cancel()
        downstream.wait(30)
        assert downstream.state.name == "NotReady"
        assert "ended Cancelled" in (downstream.state.message or "")
        assert allowed.result(timeout=30)["attempt"] == 1


def test_leaving_with_an_error_cancels_what_is_left(address: str) -> None:
    with pytest.raises(KeyError), DaskTaskRunner(address=address) as runner:
        slow = runner.submit(too_slow.with_options(timeout_seconds=None), {})
        raise KeyError("leave")
    assert slow.state.is_cancelled()


def test_crashed_state_comes_back(address: str) -> None:
    @task
    def exit_now() -> None:
        raise SystemExit(2)

    with DaskTaskRunner(address=address) as runner:
        future = runner.submit(exit_now, {})
        future.wait()
    assert future.state.is_crashed()
    with pytest.raises(CrashedRun):
        future.result()
