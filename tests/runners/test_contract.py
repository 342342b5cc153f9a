"""One behaviour contract, run against every runner (thread pool, process pool, Dask).

Each case runs once per runner kind through the ``runner_factory`` fixture
(``conftest.py``). A case that behaves differently on a runner *by design* is
listed in :data:`DIFFERS` with the README sentence that documents the
difference; it is then marked ``xfail(strict=True)``, so it fails loudly the
day the runner starts to agree. A case that fails where the README says it
should work is a bug: it is listed in :data:`DIFFERS` too, with a reason that
starts with ``"bug:"``, and in the branch notes with a reproduction.

Tasks live in ``contract_tasks.py`` so that worker processes import them by
reference. Bodies and hooks may run in another process: they report through
return values and files under ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from contract_runners import RunnerFactory
from contract_tasks import (
    Boom,
    add,
    add_async,
    call_child,
    describe,
    echo,
    exists,
    fail,
    fail_if,
    flaky,
    gate,
    hold,
    hooked,
    lines,
    nap,
    numbers,
    pid,
    read_request_id,
    request_id,
    submit_child,
    too_slow_async,
    too_slow_sync,
    total,
    touch_after,
)

from taskrun import (
    ConcurrentFuture,
    DistributedFuture,
    FutureList,
    TaskFuture,
    TaskRunner,
    allow_failure,
    as_completed,
    tags,
    unmapped,
    wait,
)
from taskrun.exceptions import (
    CancelledRun,
    MappingLengthMismatch,
    MappingMissingIterable,
    ParameterBindError,
    TaskRunTimeout,
    UpstreamTaskError,
)

pytestmark = pytest.mark.timeout(30)

#: Every wait in this module is bounded by this many seconds, so a hang fails.
LIMIT = 10.0

_README_PROCESS_CONTEXT = (
    "README, Scaling out / Process pool / Context: \"taskrun's own context (the tags(...) "
    "blocks, log_prints) crosses to the worker. Your own contextvars do not.\""
)
_README_PROCESS_NESTED = (
    "README, Scaling out / Process pool / Context: \"A task body in a worker cannot `submit` "
    "to the parent's runner, but it can call other tasks directly.\""
)
_README_DASK_NESTED = (
    "README, Scaling out / Dask / Nested submission: \"Nested submission inside a task running "
    "on Dask is not supported. A task body there has no current runner, though it can call "
    "tasks directly.\""
)
_README_DASK_CONTEXT = (
    "The contract promises the submitter's contextvars only for ThreadPoolTaskRunner; README, Scaling "
    "out / Dask: \"The whole engine (retries, timeouts, hooks, states) runs on the worker.\" "
    "Only taskrun's own context (tags) is shipped with the run, as for the process pool "
    "(the README's Dask section does not say so in as many words)"
)
_BUG_DASK_CANCELLED_BODY_RUNS = (
    "bug: on Dask a run cancelled while queued (future already Cancelled, cancel() returned True) "
    "still runs its body when a worker thread frees up before the cancel reaches the worker; "
    "README, Scaling out / Dask, 'Known bug'"
)

#: (case name, runner kind) -> why that runner differs, citing the README.
#: A reason starting with "bug:" is a defect, listed in the README as a known bug.
DIFFERS: dict[tuple[str, str], str] = {
    ("test_submitters_context_variables_are_visible_in_the_run", "process"): _README_PROCESS_CONTEXT,
    ("test_nested_submission_from_a_run", "process"): _README_PROCESS_NESTED,
    ("test_nested_submission_from_a_run", "dask"): _README_DASK_NESTED,
    ("test_submitters_context_variables_are_visible_in_the_run", "dask"): _README_DASK_CONTEXT,
    ("test_a_run_cancelled_while_queued_never_runs_its_body", "dask"): _BUG_DASK_CANCELLED_BODY_RUNS,
}


@pytest.fixture(autouse=True)
def _documented_differences(request: pytest.FixtureRequest) -> None:
    """Mark a (case, runner) pair listed in :data:`DIFFERS` as a strict xfail."""
    if "runner_factory" not in request.fixturenames:
        return
    kind = request.getfixturevalue("runner_factory").kind
    reason = DIFFERS.get((request.node.originalname, kind))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# ----------------------------------------------------------------------------- helpers


class Holds:
    """Files that :func:`contract_tasks.hold` bodies use: who started, and the release switch."""

    def __init__(self, root: Path) -> None:
        self.started = root / "started"
        self.started.mkdir()
        self.release_path = root / "release"

    def params(self, name: str) -> dict[str, Any]:
        return {"name": name, "started": str(self.started), "release": str(self.release_path)}

    def has_started(self, name: str) -> bool:
        return (self.started / name).exists()

    def saw_cancel(self, name: str) -> bool:
        return (self.started / f"{name}.cancelled").exists()

    def wait_started(self, *names: str) -> None:
        eventually(lambda: all(self.has_started(n) for n in names), f"runs {names} to start")

    def release(self) -> None:
        self.release_path.write_text("go", encoding="utf-8")


def eventually(check: Any, what: str, limit: float = LIMIT) -> None:
    """Poll ``check()`` until it is true; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {limit} s waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def released(holds: Holds) -> Iterator[None]:
    """Release every held body on the way out, whatever happened, so the runner can close."""
    try:
        yield
    finally:
        holds.release()


def future_type(kind: str) -> type[TaskFuture[Any]]:
    return DistributedFuture if kind == "dask" else ConcurrentFuture


# ----------------------------------------------------------------------------- lifecycle


def test_submit_before_entering_and_entering_twice_raise(runner_factory: RunnerFactory) -> None:
    runner = runner_factory()
    with pytest.raises(RuntimeError, match="not started"):
        runner.submit(add, {"x": 1})
    with runner:
        with pytest.raises(RuntimeError, match="already entered"), runner:
            pass
        assert runner.submit(add, {"x": 1, "y": 1}).result(timeout=LIMIT) == 2


# ----------------------------------------------------------------------------- submit


def test_submit_returns_a_future_of_the_runners_kind(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        sync = runner.submit(add, {"x": 1, "y": 2})
        async_ = runner.submit(add_async, {"x": 3, "y": 4})
        through_task = add.submit(5, y=6)
        assert isinstance(sync, future_type(runner_factory.kind))
        assert isinstance(through_task, future_type(runner_factory.kind))
        assert sync.result(timeout=LIMIT) == 3
        assert async_.result(timeout=LIMIT) == 7
        assert through_task.result(timeout=LIMIT) == 11
        assert sync.done() and sync.state.is_completed() and sync.state.name == "Completed"


def test_parameters_that_do_not_bind_raise_at_submission(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        with pytest.raises(ParameterBindError):
            runner.submit(add, {"x": 1, "nope": 2})
        with pytest.raises(ParameterBindError):
            add.submit(1, 2, 3)


def test_runs_execute_in_the_runners_workers(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        where = runner.submit(pid, {}).result(timeout=LIMIT)
    assert (where == os.getpid()) is (runner_factory.kind == "thread")


# ----------------------------------------------------------------------------- map


def test_map_splits_iterables_and_broadcasts_the_rest(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        mapped = runner.map(add, {"x": [1, 2, 3], "y": unmapped(10)})
        assert isinstance(mapped, FutureList)
        assert mapped.result(timeout=LIMIT) == [11, 12, 13]
        assert add.map([1, 2]).result(timeout=LIMIT) == [1, 2]  # the default y broadcast
        assert runner.map(add, {"x": range(3), "y": (5, 6, 7)}).result(timeout=LIMIT) == [5, 7, 9]
        upstream = runner.submit(numbers, {"n": 4})
        assert runner.map(add, {"x": upstream, "y": 1}).result(timeout=LIMIT) == [1, 2, 3, 4]


def test_map_length_mismatch_and_missing_iterable(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        with pytest.raises(MappingLengthMismatch):
            runner.map(add, {"x": [1, 2, 3], "y": [1, 2]})
        with pytest.raises(MappingMissingIterable):
            runner.map(add, {"x": 1, "y": 2})
        with pytest.raises(MappingMissingIterable):
            add.map(1)


def test_map_result_raises_the_first_failure(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        mapped = runner.map(fail_if, {"x": range(4), "bad": 2})
        with pytest.raises(Boom, match="bad item 2"):
            mapped.result(timeout=LIMIT)
        mapped.wait(timeout=LIMIT)
        assert [f.state.name for f in mapped] == ["Completed", "Completed", "Failed", "Completed"]


# ----------------------------------------------------------------------------- imap


def _counting(pulled: list[int], n: int) -> Iterator[int]:
    for i in range(n):
        pulled.append(i)
        yield i


def test_imap_ordered_reads_lazily_within_max_in_flight(runner_factory: RunnerFactory) -> None:
    pulled: list[int] = []
    values: list[int] = []
    with runner_factory() as runner:
        for value in runner.imap(add, {"x": _counting(pulled, 12), "y": unmapped(1)}, max_in_flight=3):
            # Alive runs = pulled - yielded - the one in hand: never above max_in_flight.
            assert len(pulled) - len(values) <= 3
            values.append(value)
    assert values == list(range(1, 13))


def test_imap_unordered_yields_as_runs_finish(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    gate_path = str(tmp_path / "gate")
    values: list[int] = []
    with runner_factory() as runner:
        try:
            for value in runner.imap(gate, {"x": range(4), "path": gate_path}, max_in_flight=2,
                                     ordered=False):
                values.append(value)
                if len(values) == 3:
                    Path(gate_path).write_text("open", encoding="utf-8")
        finally:
            Path(gate_path).write_text("open", encoding="utf-8")
    assert values == [1, 2, 3, 0]


def test_imap_raises_a_failed_item_when_reached(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        seen: list[int] = []
        with pytest.raises(Boom, match="bad item 2"):
            for value in runner.imap(fail_if, {"x": range(5), "bad": 2}, max_in_flight=2):
                seen.append(value)
        assert seen == [0, 1]
        with pytest.raises(MappingMissingIterable):
            list(runner.imap(add, {"x": 1}))


@pytest.mark.anyio
async def test_aimap_ordered_unordered_and_max_in_flight(
        anyio_backend: str, runner_factory: RunnerFactory, tmp_path: Path) -> None:
    gate_path = tmp_path / "gate"
    pulled: list[int] = []
    async with runner_factory() as runner:
        with anyio.fail_after(LIMIT):
            ordered: list[int] = []
            async for value in runner.aimap(add, {"x": _counting(pulled, 8), "y": unmapped(1)},
                                            max_in_flight=2):
                assert len(pulled) - len(ordered) <= 2
                ordered.append(value)
            assert ordered == list(range(1, 9))

            unordered: list[int] = []
            try:
                async for value in runner.aimap(gate, {"x": range(4), "path": str(gate_path)},
                                                max_in_flight=2, ordered=False):
                    unordered.append(value)
                    if len(unordered) == 3:
                        gate_path.write_text("open", encoding="utf-8")
            finally:
                gate_path.write_text("open", encoding="utf-8")
            assert unordered == [1, 2, 3, 0]


# ----------------------------------------------------------------------------- dependencies


def test_wait_for_finishes_first(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    marker = str(tmp_path / "upstream-done")
    with runner_factory() as runner:
        upstream = runner.submit(touch_after, {"seconds": 0.05, "path": marker})
        downstream = runner.submit(exists, {"path": marker}, wait_for=[upstream])
        assert downstream.result(timeout=LIMIT) is True
        mapped = runner.map(exists, {"path": [marker, marker]}, wait_for=[upstream])
        assert mapped.result(timeout=LIMIT) == [True, True]


def test_futures_nested_in_parameters_are_resolved(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        one = runner.submit(add, {"x": 1})
        two = runner.submit(add_async, {"x": 2})
        three = runner.submit(add, {"x": 3})
        nested = runner.submit(echo, {"value": {"list": [one, (two,)], "dict": {"k": three}}})
        assert nested.result(timeout=LIMIT) == {"list": [1, (2,)], "dict": {"k": 3}}
        fan_in = runner.submit(total, {"xs": runner.map(add, {"x": [1, 2, 3]})})
        assert fan_in.result(timeout=LIMIT) == 6
        chained = runner.submit(add, {"x": runner.submit(add, {"x": one, "y": 10}), "y": 100})
        assert chained.result(timeout=LIMIT) == 111


def test_upstream_failure_makes_dependents_not_ready(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        bad = runner.submit(fail, {"message": "upstream broke"})
        by_parameter = runner.submit(add, {"x": bad})
        by_wait_for = runner.submit(add, {"x": 1}, wait_for=[bad])
        nested = runner.submit(echo, {"value": [bad]})
        for future in (by_parameter, by_wait_for, nested):
            future.wait(timeout=LIMIT)
            assert future.done()
            assert future.state.is_pending() and future.state.name == "NotReady"
            with pytest.raises(UpstreamTaskError):
                future.result(timeout=LIMIT)


def test_allow_failure_passes_the_exception_on(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        bad = runner.submit(fail, {"message": "tolerated"})
        received = runner.submit(echo, {"value": allow_failure(bad)})
        # allow_failure in wait_for works, but wait_for is typed Iterable[TaskFuture] (see notes).
        started = runner.submit(add, {"x": 1}, wait_for=[allow_failure(bad)])  # type: ignore[list-item]
        value = received.result(timeout=LIMIT)
        assert isinstance(value, Boom) and str(value) == "tolerated"
        assert started.result(timeout=LIMIT) == 1


# ----------------------------------------------------------------------------- retries, timeouts


def test_retries_until_a_flaky_body_succeeds(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    recovers, never = tmp_path / "recovers", tmp_path / "never"
    with runner_factory() as runner:
        ok = runner.submit(flaky, {"counter": str(recovers), "failures": 2})
        exhausted = runner.submit(flaky, {"counter": str(never), "failures": 9})
        assert ok.result(timeout=LIMIT) == 3
        exhausted.wait(timeout=LIMIT)
    assert lines(recovers) == ["1", "2", "3"]
    assert lines(never) == ["1", "2", "3"]  # retries=2: three attempts, then Failed
    assert exhausted.state.is_failed()
    with pytest.raises(Boom, match="attempt 3"):
        exhausted.result()


def test_timeouts_end_timed_out(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        slow_sync = runner.submit(too_slow_sync, {})
        slow_async = runner.submit(too_slow_async, {})
        for future in (slow_sync, slow_async):
            future.wait(timeout=LIMIT)
            assert future.state.is_failed() and future.state.name == "TimedOut"
            with pytest.raises(TaskRunTimeout) as caught:
                future.result()
            assert isinstance(caught.value, TimeoutError)


# ----------------------------------------------------------------------------- cancellation


def test_cancel_a_queued_run(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    busy = [f"busy{i}" for i in range(runner_factory.slots)]
    with runner_factory() as runner, released(holds):
        running = [runner.submit(hold, holds.params(name)) for name in busy]
        holds.wait_started(*busy)
        queued = runner.submit(hold, holds.params("queued"))
        assert queued.cancel() is True
        queued.wait(timeout=LIMIT)
        assert queued.state.is_cancelled()
        with pytest.raises(CancelledRun):
            queued.result()
        assert queued.cancel() is False
        time.sleep(0.1)  # give a wrongly started body the time to show itself
        assert not holds.has_started("queued")
        holds.release()
        assert [f.result(timeout=LIMIT) for f in running] == busy


def test_a_run_cancelled_while_queued_never_runs_its_body(
        runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    busy = [f"busy{i}" for i in range(runner_factory.slots)]
    with runner_factory() as runner, released(holds):
        running = [runner.submit(hold, holds.params(name)) for name in busy]
        holds.wait_started(*busy)
        queued = runner.submit(hold, holds.params("queued"))
        assert queued.cancel() is True and queued.state.is_cancelled()
        holds.release()  # slots free up at once, before the cancel could travel anywhere
        assert [f.result(timeout=LIMIT) for f in running] == busy
    time.sleep(0.1)
    assert not holds.has_started("queued")


def test_cancel_a_running_run(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    with runner_factory() as runner, released(holds):
        running = runner.submit(hold, holds.params("running"))
        holds.wait_started("running")
        assert running.cancel() is True
        running.wait(timeout=LIMIT)
        assert running.state.is_cancelled()
        with pytest.raises(CancelledRun):
            running.result()
        eventually(lambda: holds.saw_cancel("running"), "the body to see cancel_requested()")
        assert runner.submit(add, {"x": 1}).result(timeout=LIMIT) == 1


def test_cancel_all(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    names = [f"run{i}" for i in range(runner_factory.slots + 2)]
    with runner_factory() as runner, released(holds):
        futures = [runner.submit(hold, holds.params(name)) for name in names]
        holds.wait_started(*names[: runner_factory.slots])
        runner.cancel_all()
        _, not_done = wait(futures, timeout=LIMIT)
        assert not not_done
        assert all(f.state.is_cancelled() for f in futures)
        eventually(lambda: all(holds.saw_cancel(n) for n in names[: runner_factory.slots]),
                   "the running bodies to see cancel_requested()")
        time.sleep(0.1)  # slots are free now: a wrongly started queued body would show itself
        assert not any(holds.has_started(name) for name in names[runner_factory.slots:])


# ----------------------------------------------------------------------------- hooks


def test_hooks_run_before_the_future_is_done(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    ok_log, bad_log = tmp_path / "ok.log", tmp_path / "bad.log"
    with runner_factory() as runner:
        ok = runner.submit(hooked, {"log": str(ok_log), "ok": True})
        bad = runner.submit(hooked, {"log": str(bad_log), "ok": False})
        assert ok.result(timeout=LIMIT) == "ok"
        ok_lines = lines(ok_log)
        bad.wait(timeout=LIMIT)
        bad_lines = lines(bad_log)
        worker_pid = runner.submit(pid, {}).result(timeout=LIMIT)
    assert [line.split()[0] for line in ok_lines] == ["Running", "Completed"]
    assert [line.split()[0] for line in bad_lines] == ["Running", "Failed"]
    # README: process pool hooks run in your process; on Dask the whole engine runs on the worker.
    expected = worker_pid if runner_factory.kind == "dask" else os.getpid()
    assert {int(line.split()[1]) for line in ok_lines + bad_lines} == {expected}


# ----------------------------------------------------------------------------- context


def test_run_context_and_tags(runner_factory: RunnerFactory) -> None:
    with runner_factory(), tags("outer"):
        future = describe.submit(3)
        info = future.result(timeout=LIMIT)
    assert info["attempt"] == 1
    assert info["parameters"] == {"x": 3}
    assert info["tags"] == ["outer", "own"]
    assert info["task_run_name"] == "describe-3"
    assert info["task_run_id"] == future.task_run_id
    assert info["task_name"] == describe.name


def test_submitters_context_variables_are_visible_in_the_run(runner_factory: RunnerFactory) -> None:
    token = request_id.set("req-7")
    try:
        with runner_factory() as runner:
            assert runner.submit(read_request_id, {}).result(timeout=LIMIT) == "req-7"
    finally:
        request_id.reset(token)


def test_nested_submission_from_a_run(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        assert runner.submit(submit_child, {"x": 1}).result(timeout=LIMIT) == 2


def test_a_run_can_call_another_task_directly(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        assert runner.submit(call_child, {"x": 1}).result(timeout=LIMIT) == 2


# ----------------------------------------------------------------------------- futures


def test_future_state_done_result_timeout_and_wait(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    with runner_factory() as runner, released(holds):
        held = runner.submit(hold, holds.params("held"))
        holds.wait_started("held")
        assert not held.done() and not held.state.is_final()
        with pytest.raises(TimeoutError):
            held.result(timeout=0.05)
        assert held.wait(timeout=0.05) is None and not held.done()
        with pytest.raises(ValueError):
            held.result(timeout=-1)
        called: list[TaskFuture[Any]] = []
        held.add_done_callback(called.append)
        holds.release()
        assert held.result(timeout=LIMIT) == "held"
        assert held.done() and held.state.is_completed() and held.state.result() == "held"
        eventually(lambda: called == [held], "the done callback")


def test_wait_and_as_completed(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    with runner_factory() as runner, released(holds):
        quick = [runner.submit(add, {"x": i}) for i in range(3)]
        held = runner.submit(hold, holds.params("held"))
        assert [f.result(timeout=LIMIT) for f in quick] == [0, 1, 2]
        holds.wait_started("held")
        done, not_done = wait([*quick, held], timeout=0.2)
        assert done == set(quick) and not_done == {held}
        with pytest.raises(TimeoutError, match="1"):
            list(as_completed([*quick, held], timeout=0.2))
        holds.release()
        finished = list(as_completed([*quick, held], timeout=LIMIT))
        assert finished[-1] is held and set(finished) == {*quick, held}


def test_exceptions_keep_their_type_and_message(runner_factory: RunnerFactory) -> None:
    with runner_factory() as runner:
        future = runner.submit(fail, {"message": "kept"})
        future.wait(timeout=LIMIT)
    assert future.state.is_failed() and future.state.name == "Failed"
    with pytest.raises(Boom, match="kept"):
        future.result()
    returned = future.result(raise_on_failure=False)
    assert type(returned) is Boom and str(returned) == "kept"


# ----------------------------------------------------------------------------- leaving


def test_leaving_waits_for_every_run(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    markers = [str(tmp_path / f"m{i}") for i in range(3)]
    with runner_factory() as runner:
        futures = runner.map(touch_after, {"seconds": 0.05, "path": markers})
        slow = runner.submit(nap, {"seconds": 0.1, "value": "late"})
    assert all(f.done() and f.state.is_completed() for f in [*futures, slow])
    assert all(os.path.exists(m) for m in markers)
    assert slow.result(timeout=0) == "late"


def test_leaving_with_an_exception_cancels_the_rest(runner_factory: RunnerFactory, tmp_path: Path) -> None:
    holds = Holds(tmp_path)
    error = KeyError("the caller's own error")
    futures: list[TaskFuture[Any]] = []
    with pytest.raises(KeyError) as caught, released(holds), runner_factory() as runner:
        futures = [runner.submit(hold, holds.params(f"run{i}")) for i in range(runner_factory.slots + 1)]
        holds.wait_started("run0")
        raise error
    assert caught.value is error
    assert futures and all(f.done() and f.state.is_cancelled() for f in futures)


# ----------------------------------------------------------------------------- async callers


@pytest.mark.anyio
async def test_await_from_async_code(anyio_backend: str, runner_factory: RunnerFactory) -> None:
    async with runner_factory() as runner:
        with anyio.fail_after(LIMIT):
            assert await runner.submit(add, {"x": 1, "y": 2}) == 3
            assert await runner.submit(add_async, {"x": 2, "y": 2}).result_async(timeout=LIMIT) == 4
            assert await add.submit(3, 3) == 6
            mapped = runner.map(add, {"x": [1, 2, 3]})
            assert await mapped.result_async() == [1, 2, 3]
            bad = runner.submit(fail, {"message": "async"})
            with pytest.raises(Boom, match="async"):
                await bad
            await bad.wait_async(timeout=LIMIT)
            assert bad.state.is_failed()


@pytest.mark.anyio
async def test_leaving_async_with_waits_or_cancels(
        anyio_backend: str, runner_factory: RunnerFactory, tmp_path: Path) -> None:
    with anyio.fail_after(LIMIT * 2):
        async with runner_factory() as runner:
            late = runner.submit(nap, {"seconds": 0.05, "value": "late"})
        assert late.done() and late.state.is_completed()

        holds = Holds(tmp_path)
        futures: list[TaskFuture[Any]] = []
        try:
            with pytest.raises(KeyError):
                async with runner_factory() as runner:
                    futures = [runner.submit(hold, holds.params(f"run{i}")) for i in range(2)]
                    while not holds.has_started("run0"):
                        await anyio.sleep(0.005)
                    raise KeyError("leave")
        finally:
            holds.release()
        assert futures and all(f.state.is_cancelled() for f in futures)


def test_runner_name_and_duplicate(runner_factory: RunnerFactory) -> None:
    runner: TaskRunner[Any] = runner_factory()
    assert runner.name == {"thread": "threadpool", "process": "processpool", "dask": "dask"}[
        runner_factory.kind
    ]
    assert runner.duplicate() == runner and runner.duplicate() is not runner
