"""Worker threads step finished sync runs on themselves (no hop to the loop)."""

from __future__ import annotations

import threading

import pytest

from taskrun import ThreadPoolTaskRunner, task


@task
def where(x: int) -> tuple[int, str]:
    return x, threading.current_thread().name


@task
def blocked_until(event: threading.Event) -> str:
    assert event.wait(10)
    return threading.current_thread().name


@task
def fail() -> None:
    raise ValueError("first link fails")


@task
def identity(x: int) -> int:
    return x


@task
async def async_where(x: int) -> tuple[int, str]:
    return x, threading.current_thread().name


@pytest.mark.timeout(30)
def test_a_chain_made_ready_by_a_worker_stays_on_that_worker() -> None:
    release = threading.Event()
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        head = runner.submit(blocked_until, {"event": release})
        links = []
        previous = head
        for i in range(200):
            previous = runner.submit(where, {"x": i}, wait_for=[previous])
            links.append(previous)
        release.set()
        first_thread = head.result(timeout=10)
        results = [f.result(timeout=10) for f in links]
    assert [x for x, _ in results] == list(range(200))
    assert {name for _, name in results} == {first_thread}


@pytest.mark.timeout(30)
def test_a_sync_chain_goes_on_while_the_loop_is_busy() -> None:
    """Finishing a sync run and starting its dependant need no turn of the loop."""
    release = threading.Event()
    hogging = threading.Event()
    free_loop = threading.Event()

    @task
    async def hog() -> None:
        hogging.set()
        free_loop.wait(10)  # keeps the loop thread busy on purpose

    with ThreadPoolTaskRunner(max_workers=8) as runner:
        head = runner.submit(blocked_until, {"event": release})
        links = []
        previous = head
        for i in range(100):
            previous = runner.submit(identity, {"x": i}, wait_for=[previous])
            links.append(previous)
        busy = runner.submit(hog, {})
        assert hogging.wait(10)
        release.set()
        try:
            assert [f.result(timeout=5) for f in links] == list(range(100))
        finally:
            free_loop.set()
        busy.result(timeout=10)


@pytest.mark.timeout(60)
def test_a_long_not_ready_cascade_on_a_worker_does_not_recurse() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        previous = runner.submit(fail, {})
        links = []
        for i in range(5000):
            previous = runner.submit(identity, {"x": i}, wait_for=[previous])
            links.append(previous)
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
