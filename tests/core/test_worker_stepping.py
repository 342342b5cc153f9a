"""Worker threads step finished sync runs on themselves (no hop to the loop)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task

from ._loop import blocked_until, loop_held, where


@task
def fail() -> None:
    raise ValueError("first link fails")


@task
def identity(x: int) -> int:
    return x


@task
async def async_where(x: int) -> tuple[int, str]:
    return x, threading.current_thread().name


def _chain(runner: ThreadPoolTaskRunner, head: Any, body: Any, count: int) -> list[Any]:
    """``count`` runs of ``body(x=i)``, each waiting for the one before, the first for ``head``."""
    links = []
    previous = head
    for i in range(count):
        previous = runner.submit(body, {"x": i}, wait_for=[previous])
        links.append(previous)
    return links


@pytest.mark.timeout(30)
def test_a_chain_made_ready_by_a_worker_stays_on_that_worker() -> None:
    release = threading.Event()
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        head = runner.submit(blocked_until, {"event": release})
        links = _chain(runner, head, where, 200)
        release.set()
        first_thread = head.result(timeout=10)
        results = [f.result(timeout=10) for f in links]
    assert [x for x, _ in results] == list(range(200))
    assert {name for _, name in results} == {first_thread}


@pytest.mark.timeout(30)
def test_a_sync_chain_goes_on_while_the_loop_is_busy() -> None:
    """Finishing a sync run and starting its dependant need no turn of the loop."""
    release = threading.Event()
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        links = _chain(runner, runner.submit(blocked_until, {"event": release}), identity, 100)
        with loop_held(runner):
            release.set()
            assert [f.result(timeout=5) for f in links] == list(range(100))


@pytest.mark.timeout(60)
def test_a_long_not_ready_cascade_on_a_worker_does_not_recurse() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        links = _chain(runner, runner.submit(fail, {}), identity, 5000)
        for future in links:
            future.wait(30)
    assert all(f.state.name == "NotReady" for f in links)


@pytest.mark.timeout(30)
def test_an_async_run_made_ready_by_a_worker_runs_on_the_loop() -> None:
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        upstream = runner.submit(where, {"x": 1})
        by_wait = runner.submit(async_where, {"x": 2}, wait_for=[upstream])
        by_value = runner.submit(async_where, {"x": upstream})
        _, worker = upstream.result(timeout=10)
        assert by_wait.result(timeout=10) == (2, "taskrun-threadpool-loop")
        assert by_value.result(timeout=10) == ((1, worker), "taskrun-threadpool-loop")
    assert worker.startswith("taskrun-threadpool-worker-")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 8])
def test_cancel_all_while_workers_step_runs_on(workers: int) -> None:
    for _ in range(20):
        with ThreadPoolTaskRunner(max_workers=workers) as runner:
            futures = runner.map(identity, {"x": range(2000)})
            runner.cancel_all()
            for future in futures:
                future.wait(30)
                assert future.done()
        states = {f.state.name for f in futures}
        assert states <= {"Completed", "Cancelled"}, states
        assert all(f.result() == i for i, f in enumerate(futures) if f.state.is_completed())


@pytest.mark.timeout(60)
def test_chains_from_many_threads_into_one_runner() -> None:
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    with ThreadPoolTaskRunner(max_workers=4) as runner:
        def submit_chain(k: int) -> None:
            try:
                previous = None
                links = []
                for i in range(300):
                    previous = runner.submit(identity, {"x": k * 1000 + i},
                                             wait_for=[previous] if previous else None)
                    links.append(previous)
                results[k] = [f.result(timeout=30) for f in links]
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=submit_chain, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(50)
    assert not errors
    assert results == {k: [k * 1000 + i for i in range(300)] for k in range(6)}


@pytest.mark.timeout(30)
def test_a_done_callback_may_not_block_the_worker_finishing_runs() -> None:
    seen: list[BaseException] = []
    go = threading.Event()
    never = threading.Event()

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        other = runner.submit(blocked_until, {"event": never})

        def blocking_callback(_: object) -> None:
            try:
                other.result(timeout=5)
            except BaseException as exc:  # checked below
                seen.append(exc)

        future = runner.submit(blocked_until, {"event": go})
        future.add_done_callback(blocking_callback)
        go.set()
        future.result(timeout=10)
        never.set()
        other.result(timeout=10)
    assert len(seen) == 1
    assert isinstance(seen[0], RuntimeError)
    assert "done callback" in str(seen[0])


@task
async def awaits_a_cancelled_task() -> None:
    import asyncio

    inner = asyncio.ensure_future(asyncio.sleep(10))
    asyncio.get_running_loop().call_later(0.05, inner.cancel)
    await inner  # CancelledError leaves the body


@pytest.mark.timeout(30)
def test_a_body_letting_cancelled_error_out_strands_no_queued_run() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        bad = [runner.submit(awaits_a_cancelled_task, {}) for _ in range(2)]
        queued = runner.map(identity, {"x": range(3)})
        assert queued.result(timeout=10) == [0, 1, 2]
        assert runner.submit(identity, {"x": 9}).result(timeout=10) == 9
    assert all(f.state.is_cancelled() for f in bad)


@pytest.mark.timeout(30)
def test_a_cancelled_body_blocked_on_a_child_takes_no_slot_again() -> None:
    go = threading.Event()
    children: list[object] = []

    @task
    def parent() -> int:
        child = runner.submit(blocked_until, {"event": go})
        children.append(child)
        child.result(timeout=10)  # gives the only slot back while it waits
        return 1

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        parent_future = runner.submit(parent, {})
        while not children:
            threading.Event().wait(0.01)
        assert parent_future.cancel()
        parent_future.wait(10)
        assert parent_future.state.is_cancelled()
        go.set()
        assert children[0].result(timeout=10)  # type: ignore[attr-defined]
        # The parent's body returns without a slot; the one slot is free again.
        assert runner.submit(identity, {"x": 5}).result(timeout=10) == 5


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_host_cancellation_grants_the_slot_to_a_resuming_body(anyio_backend: str) -> None:
    import anyio

    release = threading.Event()
    waiting = threading.Event()
    returned = threading.Event()
    body_threads: list[threading.Thread] = []

    with ThreadPoolTaskRunner(max_workers=4) as other:
        upstream = other.submit(blocked_until, {"event": release})

        @task
        def resumer() -> int:
            body_threads.append(threading.current_thread())
            waiting.set()
            upstream.result(timeout=20)  # gives its slot back while it waits
            returned.set()  # reached once it has a slot again
            return 2

        @task
        async def sleeper() -> None:
            await anyio.sleep(30)

        with anyio.move_on_after(1.0):
            async with ThreadPoolTaskRunner(max_workers=2) as runner:
                runner.submit(resumer, {})
                while not waiting.is_set():
                    await anyio.sleep(0.01)
                await anyio.sleep(0.05)
                runner.submit(sleeper, {})
                runner.submit(sleeper, {})  # both slots taken
                await anyio.sleep(0.05)
                release.set()  # the resumer now waits for a slot
                await anyio.sleep(30)
        assert returned.wait(10)
        # Its run was cancelled with the host, so its thread ends on its own,
        # once the body has returned.
        body_threads[0].join(10)
        assert not body_threads[0].is_alive()
