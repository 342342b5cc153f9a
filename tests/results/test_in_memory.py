"""``cache_result_in_memory=False``: a persisted value is not kept on the final state; every way of
asking for it reads it back from the store. Thread pool (sync; async on asyncio and trio), direct
calls, process pool and Dask (a real LocalCluster)."""

from __future__ import annotations

import gc
import pathlib
import shutil
from typing import Any

import pytest

import taskrun
from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner, allow_failure, task
from taskrun._results._errors import ResultNotAvailable
from taskrun.cache_policies import INPUTS

from ._engine_tasks import Blob, ablob, blob, executions, made, size_of

MB = 1_000_000


def expected(n: int) -> Blob:
    return Blob(n, bytes([n % 256]) * MB)


def assert_read_back(futures: list[Any], store: pathlib.Path) -> None:
    """Each value comes from the store: equal, a new object per ask, gone with the store."""
    for f in futures:
        n = f.result().n
        assert f.result() == expected(n) and f.state.result() == expected(n)
        assert f.result() is not f.result()
    shutil.rmtree(store)
    for f in futures:
        with pytest.raises(ResultNotAvailable, match="cache_result_in_memory=False"):
            f.result()
        assert f.state.is_completed()


def test_thread_pool_lets_the_value_go_and_reads_it_back(store: pathlib.Path, marks: str) -> None:
    made.clear()
    t = blob.with_options(result_storage=str(store))
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = runner.map(t, {"n": range(4), "marks": taskrun.unmapped(marks)})
        futures.wait()
    gc.collect()
    assert len(made) == 4 and all(ref() is None for ref in made)  # no Blob a body made is alive
    assert futures.result() == [expected(n) for n in range(4)]
    assert [f.state.name for f in futures] == ["Completed"] * 4
    assert_read_back(futures, store)


def test_every_engine_path_reads_the_value_from_the_store(store: pathlib.Path, marks: str) -> None:
    t = blob.with_options(result_storage=str(store))
    seen: list[int] = []

    @task
    def first_byte(value: Blob, also: Any = None) -> int:
        return value.data[0]

    t.on_completion(lambda task, run, state: seen.append(state.result().n))
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = runner.map(t, {"n": range(3), "marks": taskrun.unmapped(marks)})
        # futures as parameters, in a list, under allow_failure, and a map over a FutureList
        assert runner.submit(size_of, {"values": list(futures)}).result() == 3 * MB
        assert runner.submit(first_byte, {"value": futures[2], "also": allow_failure(futures[1])}
                             ).result() == 2
        assert runner.map(first_byte, {"value": futures}).result() == [0, 1, 2]
        assert taskrun.resolve_futures_to_results({"v": futures[1]}) == {"v": expected(1)}
        assert futures[0].wrapped_future.result(timeout=10) == expected(0)
    assert sorted(seen) == [0, 1, 2]  # hooks see a state whose result() reads back


def test_a_hit_is_not_kept_in_memory_either(store: pathlib.Path, marks: str) -> None:
    t = blob.with_options(result_storage=str(store))
    with ThreadPoolTaskRunner() as runner:
        runner.map(t, {"n": range(2), "marks": taskrun.unmapped(marks)}).wait()
    made.clear()
    with ThreadPoolTaskRunner() as runner:
        futures = runner.map(t, {"n": range(2), "marks": taskrun.unmapped(marks)})
        assert futures.result() == [expected(0), expected(1)]
        assert [f.state.name for f in futures] == ["Cached"] * 2
    assert made == [] and [executions(marks, f"blob{n}") for n in range(2)] == [1, 1]
    assert_read_back(futures, store)


def test_direct_call_returns_the_value(store: pathlib.Path, marks: str) -> None:
    t = blob.with_options(result_storage=str(store))
    assert t(5, marks) == expected(5)
    state = t(5, marks, return_state=True)
    assert state.name == "Cached" and state.result() == expected(5)


@pytest.mark.anyio
async def test_async_runs_on_both_loops(store: pathlib.Path, marks: str) -> None:
    made.clear()
    t = ablob.with_options(result_storage=str(store))
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = runner.map(t, {"n": range(3), "marks": taskrun.unmapped(marks)})
        await futures.wait_async()
    gc.collect()
    assert len(made) == 3 and all(ref() is None for ref in made)
    assert await futures.result_async() == [expected(n) for n in range(3)]
    assert await futures[1] == expected(1)
    assert_read_back(futures, store)


def test_without_persistence_the_value_stays_in_memory() -> None:
    @task(cache_result_in_memory=False)
    def make() -> Blob:
        return expected(1)

    assert make._results is None  # nothing is persisted, so nothing could be read back
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(make, {})
        assert future.result() is future.result() and future.result() == expected(1)


def test_inside_a_transaction_the_staged_value_stays_in_memory(store: pathlib.Path) -> None:
    @task(cache_policy=INPUTS, result_storage=str(store), cache_result_in_memory=False)
    def make(n: int) -> Blob:
        return expected(n)

    with ThreadPoolTaskRunner() as runner, taskrun.transaction():
        future = runner.submit(make, {"n": 2})
        assert future.result() is future.result()  # not written yet: nothing to read back
    assert future.result() == expected(2)


def test_process_pool_reads_back_in_the_parent(store: pathlib.Path, marks: str) -> None:
    t = blob.with_options(result_storage=str(store))
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        futures = runner.map(t, {"n": range(3), "marks": taskrun.unmapped(marks)})
        assert runner.submit(size_of, {"values": list(futures)}).result() == 3 * MB
    assert futures.result() == [expected(n) for n in range(3)]
    assert_read_back(futures, store)


@pytest.mark.parametrize("which", ["sync", "async"])
def test_dask_sends_back_the_place_not_the_value(dask_address: str, store: pathlib.Path, marks: str,
                                                 which: str) -> None:
    from taskrun.dask import DaskTaskRunner

    t = (blob if which == "sync" else ablob).with_options(result_storage=str(store))
    for name in ("Completed", "Cached"):
        with DaskTaskRunner(address=dask_address) as runner:
            futures = runner.map(t, {"n": range(3), "marks": taskrun.unmapped(marks)})
            assert runner.submit(size_of, {"values": list(futures)}).result() == 3 * MB
            assert futures.result() == [expected(n) for n in range(3)]
            assert {f.state.name for f in futures} == {name}
    assert_read_back(futures, store)


class CountingStorage:
    """A store in a dict that counts its reads."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.reads = 0

    def read(self, key: str) -> bytes | None:
        self.reads += 1
        return self.blobs.get(key)

    def write(self, key: str, data: bytes) -> None:
        self.blobs[key] = bytes(data)

    def delete(self, key: str) -> bool:
        return self.blobs.pop(key, None) is not None

    def list(self) -> Any:
        return iter(sorted(self.blobs))


def test_the_engine_reads_back_only_when_asked_even_when_recording(tmp_path: pathlib.Path) -> None:
    from taskrun import flow
    from taskrun.cache_policies import NO_CACHE

    storage = CountingStorage()

    @task(persist_result=True, cache_policy=NO_CACHE, result_storage=storage, cache_result_in_memory=False)
    def make(n: int) -> Blob:
        return expected(n)

    @task
    def first_byte(value: Blob) -> int:
        return value.data[0]

    @flow(record=str(tmp_path / "runs.jsonl"))
    def pipeline() -> tuple[list[Any], int]:
        futures = make.map(range(3))
        futures.wait()
        return [f.state for f in futures], first_byte.submit(futures[2]).result()

    states, byte = pipeline()
    assert byte == 2 and len(storage.blobs) == 3
    assert storage.reads == 1  # the downstream run's input; recording the runs read nothing
    assert [s.result() for s in states] == [expected(n) for n in range(3)]
    assert storage.reads == 4  # one read per ask


@pytest.mark.anyio
async def test_async_direct_call_returns_the_value(store: pathlib.Path, marks: str) -> None:
    t = ablob.with_options(result_storage=str(store))
    assert await t(4, marks) == expected(4)
    state = await t(4, marks, return_state=True)
    assert state.name == "Cached" and state.result() == expected(4)


def test_a_corrupt_record_is_never_a_value(store: pathlib.Path, marks: str) -> None:
    t = blob.with_options(result_storage=str(store))
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(t, {"n": 3, "marks": marks})
        assert future.result() == expected(3)
    (record,) = [p for p in store.rglob("*") if p.is_file() and ".locks" not in p.parts]
    data = bytearray(record.read_bytes())
    data[-1] ^= 0xFF
    record.write_bytes(bytes(data))
    with pytest.raises(ResultNotAvailable, match="corrupt"):
        future.result()
