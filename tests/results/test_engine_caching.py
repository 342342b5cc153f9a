"""Caching wired into real runs: thread pool (sync, async on asyncio and trio), direct calls,
process pool and Dask; every option end to end; hooks; transactions; SERIALIZABLE."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from typing import Any

import anyio
import pytest

import taskrun
from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner, flow, task, task_input_hash
from taskrun._engine import _caching
from taskrun._results._errors import ResultStorageKeyError
from taskrun._results._records import decode_record
from taskrun.cache_policies import DEFAULT, INPUTS, NO_CACHE, TASK_SOURCE

from ._engine_tasks import asquare, executions, records, square

MARKS_OPT = INPUTS + TASK_SOURCE - "marks"


# --- the thread pool ----------------------------------------------------------------------------------

def test_second_map_is_served_from_the_cache_and_named_cached(store: pathlib.Path, marks: str) -> None:
    t = square.with_options(result_storage=str(store), cache_policy=MARKS_OPT)
    done: list[str] = []
    t.on_completion(lambda task, run, state: done.append(state.name))
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        assert runner.map(t, {"x": range(6), "marks": taskrun.unmapped(marks)}).result() == [
            x * x for x in range(6)]
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        futures = runner.map(t, {"x": range(8), "marks": taskrun.unmapped(marks)})
        assert futures.result() == [x * x for x in range(8)]
        names = [f.state.name for f in futures]
    assert names == ["Cached"] * 6 + ["Completed"] * 2
    assert all(f.state.is_completed() for f in futures)
    assert [executions(marks, f"square{x}") for x in range(8)] == [1] * 8
    assert sorted(done) == sorted(["Completed"] * 8 + ["Cached"] * 6)  # on_completion runs on hits
    assert len(records(store)) == 8


@pytest.mark.anyio
async def test_async_runs_cache_on_both_loops(store: pathlib.Path, marks: str) -> None:
    t = asquare.with_options(result_storage=str(store), cache_policy=MARKS_OPT)
    for expected in ("Completed", "Cached"):
        async with ThreadPoolTaskRunner(max_workers=4) as runner:
            futures = runner.map(t, {"x": range(5), "marks": taskrun.unmapped(marks)})
            assert await futures.result_async() == [x * x for x in range(5)]
            assert {f.state.name for f in futures} == {expected}
    assert await t(3, marks) == 9  # a direct call on the loop: a hit
    assert [executions(marks, f"asquare{x}") for x in range(5)] == [1] * 5


def test_direct_sync_call_and_retries_are_skipped_on_a_hit(store: pathlib.Path, marks: str) -> None:
    attempts: list[int] = []

    @task(cache_policy=INPUTS, result_storage=str(store), retries=3)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return x + 1

    assert flaky(1) == 2 and attempts == [1, 1]
    state = flaky(1, return_state=True)
    assert state.name == "Cached" and state.result() == 2 and attempts == [1, 1]


def test_caching_off_hashes_and_writes_nothing(tmp_path: pathlib.Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKRUN_HOME", str(tmp_path / "home"))
    calls: list[str] = []
    monkeypatch.setattr(_caching, "begin", lambda *a: calls.append("begin"))  # would break a run
    monkeypatch.setattr(_caching, "finish", lambda *a: calls.append("finish"))

    @task
    def plain(x: int) -> int:
        return x

    assert plain._results is None
    saved = list(_caching.FLOW_DEFAULTS)  # flows with defaults defined by other tests
    _caching.FLOW_DEFAULTS.clear()
    try:
        with ThreadPoolTaskRunner() as runner:
            assert runner.map(plain, {"x": range(50)}).result() == list(range(50))
        assert plain(1) == 1 and calls == []
    finally:
        _caching.FLOW_DEFAULTS[:] = saved
    assert not (tmp_path / "home").exists()


# --- each option, end to end -----------------------------------------------------------------------------

def test_cache_key_fn_task_input_hash(store: pathlib.Path) -> None:
    runs: list[int] = []

    @task(cache_key_fn=task_input_hash, result_storage=str(store))
    def f(x: int) -> int:
        runs.append(x)
        return -x

    with ThreadPoolTaskRunner() as runner:
        assert runner.map(f, {"x": [1, 2, 1]}).result() == [-1, -2, -1]
    assert f(2) == -2 and f(1) == -1 and sorted(set(runs)) == [1, 2]


def test_cache_expiration_and_refresh_cache(store: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    @task(cache_policy=INPUTS, result_storage=str(store), cache_expiration=0.3)
    def f(x: int) -> int:
        runs.append(x)
        return x

    f(1)
    f(1)
    assert runs == [1]
    time.sleep(0.35)
    f(1)
    assert runs == [1, 1]  # expired: ran again
    f.with_options(refresh_cache=True)(1)
    assert runs == [1, 1, 1]
    monkeypatch.setenv("TASKRUN_REFRESH_CACHE", "1")
    f(1)
    assert runs == [1, 1, 1, 1]


def test_persist_result_alone_caches_within_one_flow_run(store: pathlib.Path) -> None:
    runs: list[int] = []

    @task(persist_result=True, result_storage=str(store))
    def f(x: int) -> int:
        runs.append(x)
        return x

    @flow
    def twice() -> list[str]:
        return [f.submit(1).state.name if f.submit(1).wait() is None else "", f(1, return_state=True).name]

    assert f._results is not None and f._results.policy is DEFAULT
    twice()
    twice()
    assert runs == [1, 1]  # DEFAULT keys by the flow run: once per flow run


def test_result_serializer_json_and_storage_key_template(store: pathlib.Path) -> None:
    @task(result_storage=str(store), result_serializer="json",
          result_storage_key="{task_name}/{parameters[city]}.json")
    def weather(city: str) -> dict[str, Any]:
        return {"city": city, "t": 21}

    assert weather("oslo") == {"city": "oslo", "t": 21}
    path = store / "weather" / "oslo.json"
    header, payload = decode_record(path.read_bytes())
    assert header.serializer == "json" and json.loads(payload) == {"city": "oslo", "t": 21}
    assert weather("oslo", return_state=True).name == "Cached"


def test_bad_storage_key_fails_the_run_naming_the_parameter(store: pathlib.Path) -> None:
    @task(result_storage=str(store), result_storage_key="{parameters[nope]}", retries=2)
    def f(x: int) -> int:
        return x

    state = f(1, return_state=True)
    assert state.is_failed() and isinstance(state.data, ResultStorageKeyError)
    assert "nope" in str(state.data)


def test_no_cache_persists_without_reading(store: pathlib.Path) -> None:
    runs: list[int] = []

    @task(cache_policy=NO_CACHE, persist_result=True, result_storage=str(store))
    def f(x: int) -> int:
        runs.append(x)
        return x

    f(1)
    f(1)
    assert runs == [1, 1] and len(records(store)) == 2
    assert task(cache_policy=None)(lambda: 1)._results is None  # None is NO_CACHE, and nothing persists


def test_flow_defaults_reach_its_task_runs(store: pathlib.Path) -> None:
    @task
    def plain(x: int) -> int:
        return x * 10

    @flow(persist_result=True, result_storage=str(store), result_serializer="json")
    def pipeline() -> list[int]:
        return plain.map(range(3)).result()

    assert pipeline() == [0, 10, 20]
    written = records(store)
    assert len(written) == 3
    assert {decode_record(p.read_bytes())[0].serializer for p in written} == {"json"}
    assert plain(1) == 10 and len(records(store)) == 3  # outside the flow: no defaults


# --- transactions with real runs --------------------------------------------------------------------------

def test_transaction_commits_records_together_and_runs_on_commit(store: pathlib.Path) -> None:
    seen: list[Any] = []

    @task(cache_policy=INPUTS, result_storage=str(store))
    def step(x: int) -> int:
        return x

    step.on_commit(lambda txn: seen.append(("commit", sorted(txn.staged_keys))))
    with ThreadPoolTaskRunner() as runner, taskrun.transaction():
        assert runner.map(step, {"x": [1, 2]}).result() == [1, 2]
        assert records(store) == []  # staged, not written yet
    assert len(records(store)) == 2 and seen and seen[0][0] == "commit"


def test_transaction_error_writes_nothing_and_rolls_back(store: pathlib.Path) -> None:
    rolled: list[str] = []

    @task(cache_policy=INPUTS, result_storage=str(store), on_rollback=[lambda txn: rolled.append("x")])
    def step(x: int) -> int:
        return x

    with pytest.raises(RuntimeError), ThreadPoolTaskRunner() as runner, taskrun.transaction():
        runner.submit(step, {"x": 1}).result()
        raise RuntimeError("abort")
    assert records(store) == [] and rolled == ["x"]


# --- SERIALIZABLE with real concurrent runs ------------------------------------------------------------

def test_serializable_second_run_waits_without_a_slot_and_reads_the_first(store: pathlib.Path) -> None:
    gate = threading.Event()
    runs: list[int] = []
    policy = INPUTS.configure(isolation_level="SERIALIZABLE")

    @task(cache_policy=policy, result_storage=str(store))
    def slow(x: int) -> int:
        runs.append(x)
        assert gate.wait(10)
        return x * 3

    @task
    def opener() -> bool:
        gate.set()
        return True

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        first = runner.submit(slow, {"x": 7})
        while not runs:
            time.sleep(0.005)
        waiters = [runner.submit(slow, {"x": 7}) for _ in range(3)]
        time.sleep(0.1)
        # Two slots: `first` holds one; if the waiters held any, `opener` could never run.
        assert runner.submit(opener, {}).result(timeout=10)
        assert first.result(timeout=10) == 21
        assert [w.result(timeout=10) for w in waiters] == [21, 21, 21]
        assert [w.state.name for w in waiters] == ["Cached"] * 3
    assert runs == [7]


@pytest.mark.anyio
async def test_serializable_async_runs_execute_once(store: pathlib.Path) -> None:
    runs: list[int] = []
    policy = INPUTS.configure(isolation_level="SERIALIZABLE")

    @task(cache_policy=policy, result_storage=str(store))
    async def slow(x: int) -> int:
        runs.append(x)
        await anyio.sleep(0.1)
        return x

    async with ThreadPoolTaskRunner(max_workers=1) as runner:
        futures = [runner.submit(slow, {"x": 1}) for _ in range(4)]
        assert [await f.result_async() for f in futures] == [1] * 4
    assert runs == [1]
    assert sorted(f.state.name for f in futures) == ["Cached"] * 3 + ["Completed"]


# --- process pool and Dask --------------------------------------------------------------------------------

def test_process_pool_caches_in_the_parent(store: pathlib.Path, marks: str) -> None:
    t = square.with_options(result_storage=str(store), cache_policy=MARKS_OPT)
    for expected in ("Completed", "Cached"):
        with ProcessPoolTaskRunner(max_workers=2) as runner:
            futures = runner.map(t, {"x": range(4), "marks": taskrun.unmapped(marks)})
            assert futures.result() == [0, 1, 4, 9]
            assert {f.state.name for f in futures} == {expected}
    assert [executions(marks, f"square{x}") for x in range(4)] == [1] * 4


@pytest.mark.parametrize("which", ["sync", "async"])
def test_dask_caches_on_the_worker_in_a_shared_store(dask_address: str, store: pathlib.Path, marks: str,
                                                     which: str) -> None:
    from taskrun.dask import DaskTaskRunner

    base = square if which == "sync" else asquare
    t = base.with_options(result_storage=str(store), cache_policy=MARKS_OPT)
    for expected in ("Completed", "Cached"):
        with DaskTaskRunner(address=dask_address) as runner:
            futures = runner.map(t, {"x": range(3), "marks": taskrun.unmapped(marks)})
            assert futures.result() == [0, 1, 4]
            assert {f.state.name for f in futures} == {expected}
    name = base.name
    assert [executions(marks, f"{name}{x}") for x in range(3)] == [1] * 3


# --- S3 through a real S3 API server -------------------------------------------------------------------

def test_runs_cache_in_s3_on_a_moto_server(s3_bucket: tuple[str, dict[str, Any]], marks: str) -> None:
    from taskrun._results._storage import FsspecStorage

    bucket, options = s3_bucket
    s3 = FsspecStorage(f"s3://{bucket}/cache", **options)
    t = square.with_options(result_storage=s3, cache_policy=MARKS_OPT)
    with ThreadPoolTaskRunner() as runner:
        assert runner.map(t, {"x": range(3), "marks": taskrun.unmapped(marks)}).result() == [0, 1, 4]
    with ThreadPoolTaskRunner() as runner:
        futures = runner.map(t, {"x": range(3), "marks": taskrun.unmapped(marks)})
        assert futures.result() == [0, 1, 4] and {f.state.name for f in futures} == {"Cached"}
    assert len(list(s3.list())) == 3

