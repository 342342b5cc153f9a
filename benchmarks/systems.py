"""The systems under test: one function per (system, workload), returning wall seconds.

Each function builds its inputs, times only the work (runner or executor start,
submission, waiting for every result, shutdown), then checks the output outside
the timed region, so a wrong answer can never pass as a fast one.

taskrun is imported on first use, not at module import, so the rest of the suite
(and the rows of the other workloads) still runs while the library is broken.
"""

from __future__ import annotations

import asyncio
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

perf = time.perf_counter


@functools.cache
def _tasks() -> SimpleNamespace:
    """The task definitions, made once (``@task`` needs taskrun)."""
    import anyio

    from taskrun import task

    @task
    def noop(x: int) -> int:
        return x

    @task
    async def anoop(x: int) -> int:
        return x

    @task
    def inc(x: int, k: int) -> int:
        return x + k

    @task
    def total(xs: list[int]) -> int:
        return sum(xs)

    @task
    def nap(x: int, seconds: float) -> int:
        time.sleep(seconds)
        return x

    @task
    async def anap(x: int, seconds: float) -> int:
        await anyio.sleep(seconds)
        return x

    return SimpleNamespace(noop=noop, anoop=anoop, inc=inc, total=total, nap=nap, anap=anap)


def _plain(x: int) -> int:
    return x


async def _aplain(x: int) -> int:
    return x


# ---------------------------------------------------------------------- sync map


def taskrun_sync_map(n: int, workers: int = 8) -> float:
    from taskrun import ThreadPoolTaskRunner

    t, xs = _tasks(), list(range(n))
    start = perf()
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        out = runner.map(t.noop, {"x": xs}).result()
    elapsed = perf() - start
    assert out == xs
    return elapsed


def executor_sync_map(n: int, workers: int = 8) -> float:
    xs = list(range(n))
    start = perf()
    with ThreadPoolExecutor(workers) as ex:
        out = [f.result() for f in [ex.submit(_plain, x) for x in xs]]
    elapsed = perf() - start
    assert out == xs
    return elapsed


# ---------------------------------------------------------------------- async map


def taskrun_async_map(n: int, backend: str = "asyncio") -> float:
    """``async with ThreadPoolTaskRunner()`` (default workers) + ``map`` + ``result_async``."""
    import anyio

    from taskrun import ThreadPoolTaskRunner

    t, xs = _tasks(), list(range(n))

    async def go() -> list[int]:
        async with ThreadPoolTaskRunner() as runner:
            return await runner.map(t.anoop, {"x": xs}).result_async()

    start = perf()
    out = anyio.run(go, backend=backend)
    elapsed = perf() - start
    assert out == xs
    return elapsed


def asyncio_gather(n: int) -> float:
    xs = list(range(n))

    async def go() -> list[int]:
        return await asyncio.gather(*[_aplain(x) for x in xs])

    start = perf()
    out = asyncio.run(go())
    elapsed = perf() - start
    assert out == xs
    return elapsed


def trio_nursery(n: int) -> float:
    import trio

    xs = list(range(n))
    out: list[Any] = [None] * n

    async def one(i: int) -> None:
        out[i] = await _aplain(i)

    async def go() -> None:
        async with trio.open_nursery() as nursery:
            for i in xs:
                nursery.start_soon(one, i)

    start = perf()
    trio.run(go)
    elapsed = perf() - start
    assert out == xs
    return elapsed


# ---------------------------------------------------------------------- chain


def taskrun_chain(n: int, workers: int = 8) -> float:
    """``n`` sync no-op runs, each ``wait_for=[previous]``."""
    from taskrun import ThreadPoolTaskRunner

    t, xs = _tasks(), list(range(n))
    start = perf()
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        prev = None
        futures = []
        for x in xs:
            prev = runner.submit(t.noop, {"x": x}, wait_for=[prev] if prev is not None else None)
            futures.append(prev)
        out = [f.result() for f in futures]
    elapsed = perf() - start
    assert out == xs
    return elapsed


# ---------------------------------------------------------------------- diamond DAG

FAN = 10


def _diamond_expected(d: int) -> list[int]:
    return [FAN * i + FAN * (FAN - 1) // 2 for i in range(d)]


def taskrun_diamonds(d: int, workers: int = 8) -> float:
    """``d`` diamonds: root(i) -> 10 x inc(root, k) -> total([10 futures]).

    Every dependency is a future passed as a parameter (no ``wait_for``).
    """
    from taskrun import ThreadPoolTaskRunner

    t = _tasks()
    start = perf()
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        sinks = []
        for i in range(d):
            root = runner.submit(t.noop, {"x": i})
            kids = [runner.submit(t.inc, {"x": root, "k": k}) for k in range(FAN)]
            sinks.append(runner.submit(t.total, {"xs": kids}))
        out = [s.result() for s in sinks]
    elapsed = perf() - start
    assert out == _diamond_expected(d)
    return elapsed


def executor_diamonds(d: int, workers: int = 8) -> float:
    """The same DAG on a bare ThreadPoolExecutor: each job blocks on its inputs'
    ``result()`` inside the worker. (No deadlock: the queue is FIFO and every job
    depends only on jobs submitted before it.)"""

    def kid(root: Any, k: int) -> int:
        return root.result() + k

    def sink(kids: list[Any]) -> int:
        return sum(f.result() for f in kids)

    start = perf()
    with ThreadPoolExecutor(workers) as ex:
        sinks = []
        for i in range(d):
            root = ex.submit(_plain, i)
            kids = [ex.submit(kid, root, k) for k in range(FAN)]
            sinks.append(ex.submit(sink, kids))
        out = [s.result() for s in sinks]
    elapsed = perf() - start
    assert out == _diamond_expected(d)
    return elapsed


# ---------------------------------------------------------------------- I/O bound


def taskrun_io_sync(n: int, seconds: float, workers: int) -> float:
    from taskrun import ThreadPoolTaskRunner

    t, xs = _tasks(), list(range(n))
    start = perf()
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        out = runner.map(t.nap, {"x": xs, "seconds": seconds}).result()
    elapsed = perf() - start
    assert out == xs
    return elapsed


def executor_io_sync(n: int, seconds: float, workers: int) -> float:
    xs = list(range(n))

    def nap(x: int) -> int:
        time.sleep(seconds)
        return x

    start = perf()
    with ThreadPoolExecutor(workers) as ex:
        out = [f.result() for f in [ex.submit(nap, x) for x in xs]]
    elapsed = perf() - start
    assert out == xs
    return elapsed


def taskrun_io_async(n: int, seconds: float, workers: int) -> float:
    import anyio

    from taskrun import ThreadPoolTaskRunner

    t, xs = _tasks(), list(range(n))

    async def go() -> list[int]:
        async with ThreadPoolTaskRunner(max_workers=workers) as runner:
            return await runner.map(t.anap, {"x": xs, "seconds": seconds}).result_async()

    start = perf()
    out = anyio.run(go)
    elapsed = perf() - start
    assert out == xs
    return elapsed


def asyncio_io(n: int, seconds: float, workers: int) -> float:
    """asyncio.gather of ``n`` sleeps, at most ``workers`` at once (a Semaphore)."""
    xs = list(range(n))

    async def go() -> list[int]:
        limit = asyncio.Semaphore(workers)

        async def nap(x: int) -> int:
            async with limit:
                await asyncio.sleep(seconds)
            return x

        return await asyncio.gather(*[nap(x) for x in xs])

    start = perf()
    out = asyncio.run(go())
    elapsed = perf() - start
    assert out == xs
    return elapsed
