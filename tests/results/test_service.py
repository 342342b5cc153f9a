from __future__ import annotations

import datetime
import multiprocessing
import os
import pathlib
import threading
import time
import uuid
import warnings
from typing import Any

import anyio
import pytest

from taskrun._results._errors import (
    CorruptRecordWarning,
    ResultNotPersistedWarning,
    ResultStorageKeyError,
    UnhashableInputWarning,
)
from taskrun._results._service import (
    CACHED_STATE_NAME,
    effective_config,
    flow_result_defaults,
    results_config_from_options,
)
from taskrun._results._storage import FsspecStorage, LocalStorage
from taskrun.cache_policies import DEFAULT, INPUTS, NO_CACHE, MemoryLockManager, task_input_hash
from taskrun.transactions import transaction

from . import _workers
from ._views import View, double, view


def slow_square(x: int, log_path: str | None = None) -> int:
    if log_path is not None:
        with open(log_path, "a") as f:
            f.write(f"{os.getpid()}\n")
    time.sleep(0.2)
    return x * x


def cfg(**options: Any) -> Any:
    config = results_config_from_options(**options)
    assert config is not None
    return config


def test_off_by_default_and_with_no_cache() -> None:
    assert results_config_from_options() is None
    assert results_config_from_options(cache_policy=None, cache_result_in_memory=True) is None
    assert results_config_from_options(cache_policy=NO_CACHE) is None
    assert results_config_from_options(persist_result=False) is None
    assert CACHED_STATE_NAME == "Cached"


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"cache_policy": "inputs"}, TypeError, "CachePolicy"),
    ({"cache_key_fn": 3}, TypeError, "callable"),
    ({"cache_key_fn": task_input_hash, "cache_policy": INPUTS}, ValueError, "not both"),
    ({"cache_policy": INPUTS, "cache_expiration": -1}, ValueError, "positive"),
    ({"cache_policy": INPUTS, "cache_expiration": "1h"}, TypeError, "timedelta"),
    ({"cache_policy": INPUTS, "refresh_cache": "yes"}, TypeError, "refresh_cache"),
    ({"cache_policy": INPUTS, "persist_result": False}, ValueError, "persist_result=False"),
    ({"cache_expiration": 10}, ValueError, "need caching"),
    ({"cache_policy": INPUTS, "result_storage_key": "{oops}"}, ValueError, "fields may name"),
    ({"cache_policy": INPUTS, "result_serializer": "yaml"}, ValueError, "known serializer"),
    ({"cache_policy": INPUTS, "result_storage": 5}, TypeError, "result_storage"),
    ({"cache_policy": INPUTS, "on_commit": [1]}, TypeError, "on_commit"),
    ({"cache_polcy": INPUTS}, TypeError, "unknown result option"),
])
def test_bad_options_fail_at_definition(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        results_config_from_options(**options)


def test_persist_result_alone_uses_default_policy() -> None:
    config = cfg(persist_result=True)
    assert config.policy is DEFAULT and config.caching
    assert cfg(result_storage="memory://x").policy is DEFAULT


def test_miss_store_hit(home: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS)
    assert config.lookup(view(x=2)) is None
    config.store(view(x=2), 4)
    hit = config.lookup(view(x=2))
    assert hit is not None and hit.value == 4 and hit.header.task == "double"
    assert config.lookup(view(x=3)) is None
    assert next(iter((home / "results").iterdir())).name == hit.key


def test_expiration(home: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS, cache_expiration=datetime.timedelta(seconds=0.2))
    config.store(view(x=1), 1)
    assert config.lookup(view(x=1)) is not None
    time.sleep(0.25)
    assert config.lookup(view(x=1)) is None


def test_refresh_cache_option_and_setting(home: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg(cache_policy=INPUTS).store(view(x=1), "old")
    refreshing = cfg(cache_policy=INPUTS, refresh_cache=True)
    assert refreshing.lookup(view(x=1)) is None
    refreshing.store(view(x=1), "new")
    assert cfg(cache_policy=INPUTS).lookup(view(x=1)).value == "new"
    monkeypatch.setenv("TASKRUN_REFRESH_CACHE", "true")
    assert cfg(cache_policy=INPUTS).lookup(view(x=1)) is None
    assert cfg(cache_policy=INPUTS, refresh_cache=False).lookup(view(x=1)) is not None
    monkeypatch.setenv("TASKRUN_REFRESH_CACHE", "maybe")
    with pytest.raises(ValueError, match="TASKRUN_REFRESH_CACHE"):
        cfg(cache_policy=INPUTS).lookup(view(x=1))


def test_corrupt_record_is_a_miss_with_one_warning(home: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS)
    run = config.begin(view(x=5))
    run.store(25)
    path = LocalStorage(home / "results").path(run.key)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.warns(CorruptRecordWarning, match="corrupt") as caught:
        assert config.lookup(view(x=5)) is None
    assert len(caught) == 1
    config.store(view(x=5), 25)
    assert config.lookup(view(x=5)).value == 25


def test_unhashable_input_warns_once_per_task_and_runs_uncached(home: pathlib.Path) -> None:
    def locked_task(lock: Any) -> int:
        return 1

    config = cfg(cache_policy=INPUTS)
    name = f"locked_task_{uuid.uuid4().hex}"
    v = View(task_fn=locked_task, parameters={"lock": threading.Lock()}, task_name=name)
    with pytest.warns(UnhashableInputWarning) as caught:
        run = config.begin(v)
        config.begin(View(task_fn=locked_task, parameters={"lock": threading.Lock()}, task_name=name))
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "'lock'" in text and "cache_key_fn" in text and "INPUTS - 'lock'" in text and "quote" in text
    assert not run.cacheable and run.lookup() is None
    assert run.key == f"run-{v.task_run_id.hex}"


def test_serializer_failure_warns_and_does_not_write(home: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS, result_serializer="json")
    with pytest.warns(ResultNotPersistedWarning, match="cloudpickle"):
        assert config.begin(view(x=1)).store({1, 2}) is False
    assert not (home / "results").exists() or list((home / "results").iterdir()) == []


def test_json_records_are_readable_and_serializer_is_per_record(home: pathlib.Path) -> None:
    cfg(cache_policy=INPUTS, result_serializer="json").store(view(x=1), {"a": [1]})
    hit = cfg(cache_policy=INPUTS).lookup(view(x=1))
    assert hit is not None and hit.value == {"a": [1]} and hit.header.serializer == "json"


def test_result_storage_key_template(tmp_path: pathlib.Path) -> None:
    config = cfg(result_storage=tmp_path, result_storage_key="{task_name}/{parameters[x]}.rec")
    run = config.begin(view(x=7))
    assert run.key == "double/7.rec" and run.cacheable
    run.store(49)
    assert (tmp_path / "double" / "7.rec").exists()
    assert config.lookup(view(x=7)).value == 49
    with pytest.raises(ResultStorageKeyError, match="'y'"):
        cfg(result_storage_key="{parameters[y]}").begin(view(x=1))
    with pytest.raises(ResultStorageKeyError, match="bad key"):
        cfg(result_storage_key="{parameters[x]}").begin(view(x="../up"))


def test_no_cache_with_persist_writes_under_the_run_id(tmp_path: pathlib.Path) -> None:
    config = cfg(cache_policy=NO_CACHE, persist_result=True, result_storage=tmp_path)
    v = view(x=1)
    run = config.begin(v)
    assert not run.cacheable and run.key == f"run-{v.task_run_id.hex}"
    run.store(2)
    assert (tmp_path / run.key).exists() and run.lookup() is None


def test_key_storage_of_the_policy_wins(tmp_path: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS.configure(key_storage=tmp_path / "keys"),
                 result_storage=tmp_path / "other")
    config.store(view(x=1), 1)
    assert list((tmp_path / "keys").iterdir()) and not (tmp_path / "other").exists()


def test_flow_defaults_merge_under_task_options(tmp_path: pathlib.Path) -> None:
    defaults = flow_result_defaults(persist_result=True, result_storage=tmp_path / "flow",
                                    result_serializer="json")
    assert flow_result_defaults() is None
    merged = effective_config(None, defaults)
    assert merged is not None and merged.policy is DEFAULT
    assert merged.storage == LocalStorage(tmp_path / "flow")
    task_cfg = cfg(cache_policy=INPUTS, result_storage=tmp_path / "task")
    merged2 = effective_config(task_cfg, defaults)
    assert merged2.storage == LocalStorage(tmp_path / "task") and merged2.serializer.name == "json"
    assert effective_config(task_cfg, defaults) is merged2
    assert effective_config(task_cfg, None) is task_cfg
    off = flow_result_defaults(persist_result=False)
    assert effective_config(None, off) is None


def test_store_inside_a_transaction_is_staged(home: pathlib.Path) -> None:
    log: list[str] = []
    config = cfg(cache_policy=INPUTS, on_commit=[lambda t: log.append("c")],
                 on_rollback=[lambda t: log.append("r")])
    with transaction():
        config.store(view(x=1), 1)
        assert config.lookup(view(x=1)).value == 1            # read-your-writes
        outside = cfg(cache_policy=INPUTS).begin(view(x=1))
        assert outside.storage.read(outside.key) is None
    assert config.lookup(view(x=1)).value == 1 and log == ["c"]
    with pytest.raises(RuntimeError), transaction():
        config.store(view(x=2), 2)
        raise RuntimeError
    assert config.lookup(view(x=2)) is None and log == ["c", "r"]


def test_fsspec_memory_store_through_the_service() -> None:
    url = f"memory://svc-{uuid.uuid4().hex}"
    config = cfg(cache_policy=INPUTS, result_storage=url)
    config.store(view(x=3), 9)
    assert config.lookup(view(x=3)).value == 9
    assert isinstance(config.resolve_storage(), FsspecStorage)


def _race(config: Any, n: int) -> tuple[list[int], list[int]]:
    executed: list[int] = []
    results: list[int] = []

    def run() -> None:
        rc = config.begin(view(slow_square, x=3))
        with rc.locked(timeout=10):
            hit = rc.lookup()
            if hit is None:
                executed.append(1)
                value = slow_square(3)
                rc.store(value)
            else:
                value = hit.value
        results.append(value)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return executed, results


@pytest.mark.parametrize("manager", ["file (default for a local store)", "memory"])
def test_serializable_threads_execute_once(tmp_path: pathlib.Path, manager: str) -> None:
    lock_manager = MemoryLockManager() if manager == "memory" else None
    policy = INPUTS.configure(isolation_level="SERIALIZABLE", lock_manager=lock_manager)
    executed, results = _race(cfg(cache_policy=policy, result_storage=tmp_path), 4)
    assert executed == [1] and results == [9] * 4


def test_read_committed_threads_may_all_execute(tmp_path: pathlib.Path) -> None:
    executed, results = _race(cfg(cache_policy=INPUTS, result_storage=tmp_path), 3)
    assert len(executed) == 3 and results == [9] * 3


def test_read_committed_lets_both_run(tmp_path: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS, result_storage=tmp_path)
    a, b = config.begin(view(x=1)), config.begin(view(x=1))
    assert a.acquire(timeout=0) and b.acquire(timeout=0)
    assert a.lookup() is None and b.lookup() is None


def test_lock_released_when_the_run_fails(tmp_path: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"), result_storage=tmp_path)
    with pytest.raises(ZeroDivisionError):
        with config.begin(view(x=1)).locked(timeout=1):
            raise ZeroDivisionError
    assert config.begin(view(x=1)).acquire(timeout=0)


def test_serializable_lock_held_until_transaction_commits(tmp_path: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"), result_storage=tmp_path)
    with transaction():
        first = config.begin(view(x=1))
        with first.locked(timeout=1):
            first.store(1)
        assert not config.begin(view(x=1)).acquire(timeout=0.05)
    other = config.begin(view(x=1))
    assert other.acquire(timeout=1) and other.lookup().value == 1
    other.release()


def test_serializable_across_processes_executes_once(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "executions.log"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        outs = [pool.apply_async(_workers.serializable_run, (str(tmp_path / "store"), 6, str(log)))
                for _ in range(3)]
        values = [o.get(60) for o in outs]
    assert values == [36, 36, 36]
    assert len(log.read_text().splitlines()) == 1


@pytest.mark.anyio
async def test_async_twins_and_async_lock(tmp_path: pathlib.Path) -> None:
    config = cfg(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"), result_storage=tmp_path)
    executed = 0

    async def run() -> int:
        nonlocal executed
        rc = config.begin(view(x=4))
        async with rc.locked_async(timeout=10):
            hit = await rc.lookup_async()
            if hit is not None:
                return int(hit.value)
            executed += 1
            await anyio.sleep(0.05)
            await rc.store_async(16)
            return 16

    results: list[int] = []

    async def collect() -> None:
        results.append(await run())

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(collect)
    assert results == [16] * 4 and executed == 1
    assert await config.lookup_async(view(x=4)) is not None
    await config.store_async(view(x=5), 25)
    assert (await config.lookup_async(view(x=5))).value == 25


def test_no_warnings_on_the_happy_path(home: pathlib.Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = cfg(cache_policy=INPUTS)
        config.store(view(x=1), double(1))
        assert config.lookup(view(x=1)).value == 2
