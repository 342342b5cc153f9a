"""The ``peers`` workload group: taskrun beside other ways of running many small tasks.

Three workloads, the same for every system: a **no-op map** (``return x``), a
**chain** (each run waits for the one before; in taskrun ``wait_for=[previous]``)
and **I/O** (each run sleeps 10 ms, at most 100 at once). Each peer is measured
alternately with the taskrun side of its own kind, in one process (see
``_timing.alternate``), and reported in µs per task with the ratio.

- sync peers (``ThreadPoolExecutor``, Dask futures, Ray tasks, joblib threading)
  against ``ThreadPoolTaskRunner`` from sync code: 8 workers for the map and the
  chain, 100 for the I/O;
- ``asyncio`` against ``async with ThreadPoolTaskRunner()`` and async tasks.

A peer whose package is not installed (or does not start here) gives ``n/a``
rows that say why; CI need not install any of them (``pip install -e '.[peers]'``
does). Dask runs on one ``LocalCluster`` (127.0.0.1, dashboard off, 2 workers x 50
threads, so that its I/O has 100 threads like the others); Ray on a local instance
``ray.init(num_cpus=2, include_dashboard=False)``, its I/O on one async actor with
``max_concurrency=100`` (Ray's way of overlapping I/O: 100 tasks at once would need
100 worker processes on a 2-CPU machine). joblib has no dependencies between calls,
so it has no chain row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import systems as s
from ._timing import alternate
from .config import Config
from .report import Result, failed, unavailable

US = 1e6
IO_WORKERS = 100
MAP_WORKERS = 8
perf = time.perf_counter

Timed = Callable[[int], float]  # n -> wall seconds


@dataclass(frozen=True)
class Sizes:
    map_n: int
    chain_n: int
    io_n: int
    io_sleep: float = 0.010


def sizes(cfg: Config) -> Sizes:
    return Sizes(500, 200, 500) if cfg.quick else Sizes(2_000, 1_000, 2_000)


def _plain(x: int) -> int:
    return x


def _link(x: int, _previous: Any) -> int:
    return x


def _nap(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def _check(out: list[Any], n: int) -> None:
    assert list(out) == list(range(n)), "wrong results"


# ---------------------------------------------------------------------- taskrun sides


def taskrun_async_chain(n: int) -> float:
    import anyio

    from taskrun import ThreadPoolTaskRunner

    t = s._tasks()

    async def go() -> list[int]:
        async with ThreadPoolTaskRunner() as runner:
            prev = None
            futures = []
            for x in range(n):
                prev = runner.submit(t.anoop, {"x": x}, wait_for=[prev] if prev is not None else None)
                futures.append(prev)
            return [await f.result_async() for f in futures]

    start = perf()
    out = anyio.run(go)
    elapsed = perf() - start
    _check(out, n)
    return elapsed


def taskrun_side(kind: str, z: Sizes) -> dict[str, Timed]:
    if kind == "async":
        return {"map": lambda n: s.taskrun_async_map(n, "asyncio"), "chain": taskrun_async_chain,
                "io": lambda n: s.taskrun_io_async(n, z.io_sleep, IO_WORKERS)}
    return {"map": lambda n: s.taskrun_sync_map(n, MAP_WORKERS),
            "chain": lambda n: s.taskrun_chain(n, MAP_WORKERS),
            "io": lambda n: s.taskrun_io_sync(n, z.io_sleep, IO_WORKERS)}


# ---------------------------------------------------------------------- peers


@contextlib.contextmanager
def thread_pool(z: Sizes) -> Iterator[dict[str, Timed]]:
    def chain(n: int) -> float:
        def link(x: int, previous: Future[int] | None) -> int:
            if previous is not None:
                previous.result()  # FIFO queue, earlier job: no deadlock
            return x

        start = perf()
        with ThreadPoolExecutor(MAP_WORKERS) as ex:
            prev: Future[int] | None = None
            futures = []
            for x in range(n):
                prev = ex.submit(link, x, prev)
                futures.append(prev)
            out = [f.result() for f in futures]
        elapsed = perf() - start
        _check(out, n)
        return elapsed

    yield {"map": lambda n: s.executor_sync_map(n, MAP_WORKERS), "chain": chain,
           "io": lambda n: s.executor_io_sync(n, z.io_sleep, IO_WORKERS)}


@contextlib.contextmanager
def asyncio_gather(z: Sizes) -> Iterator[dict[str, Timed]]:
    def chain(n: int) -> float:
        async def link(x: int, previous: asyncio.Task[int] | None) -> int:
            if previous is not None:
                await previous
            return x

        async def go() -> list[int]:
            prev: asyncio.Task[int] | None = None
            tasks = []
            for x in range(n):
                prev = asyncio.ensure_future(link(x, prev))
                tasks.append(prev)
            return await asyncio.gather(*tasks)

        start = perf()
        out = asyncio.run(go())
        elapsed = perf() - start
        _check(out, n)
        return elapsed

    yield {"map": s.asyncio_gather, "chain": chain, "io": lambda n: s.asyncio_io(n, z.io_sleep, IO_WORKERS)}


@contextlib.contextmanager
def dask_futures(z: Sizes) -> Iterator[dict[str, Timed]]:
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=IO_WORKERS // 2, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=logging.ERROR,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:

        def map_(n: int) -> float:
            start = perf()
            out = client.gather(client.map(_plain, range(n), pure=False))
            elapsed = perf() - start
            _check(out, n)
            return elapsed

        def chain(n: int) -> float:
            start = perf()
            prev = None
            futures = []
            for x in range(n):
                prev = client.submit(_link, x, prev, pure=False)
                futures.append(prev)
            out = client.gather(futures)
            elapsed = perf() - start
            _check(out, n)
            return elapsed

        def io(n: int) -> float:
            start = perf()
            out = client.gather(client.map(_nap, range(n), seconds=z.io_sleep, pure=False))
            elapsed = perf() - start
            _check(out, n)
            return elapsed

        yield {"map": map_, "chain": chain, "io": io}


@contextlib.contextmanager
def ray_tasks(z: Sizes) -> Iterator[dict[str, Timed]]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             _node_ip_address="127.0.0.1")
    try:
        plain = ray.remote(_plain)
        link = ray.remote(_link)

        @ray.remote
        class Napper:
            async def nap(self, x: int, seconds: float) -> int:
                await asyncio.sleep(seconds)
                return x

        napper = Napper.options(max_concurrency=IO_WORKERS).remote()  # type: ignore[attr-defined]

        def map_(n: int) -> float:
            start = perf()
            out = ray.get([plain.remote(x) for x in range(n)])
            elapsed = perf() - start
            _check(out, n)
            return elapsed

        def chain(n: int) -> float:
            start = perf()
            prev = None
            refs = []
            for x in range(n):
                prev = link.remote(x, prev)  # an ObjectRef argument: runs after it
                refs.append(prev)
            out = ray.get(refs)
            elapsed = perf() - start
            _check(out, n)
            return elapsed

        def io(n: int) -> float:
            start = perf()
            out = ray.get([napper.nap.remote(x, z.io_sleep) for x in range(n)])
            elapsed = perf() - start
            _check(out, n)
            return elapsed

        yield {"map": map_, "chain": chain, "io": io}
    finally:
        ray.shutdown()


@contextlib.contextmanager
def joblib_threading(z: Sizes) -> Iterator[dict[str, Timed]]:
    from joblib import Parallel, delayed

    def map_(n: int) -> float:
        start = perf()
        out = Parallel(n_jobs=MAP_WORKERS, backend="threading")(delayed(_plain)(x) for x in range(n))
        elapsed = perf() - start
        _check(out, n)
        return elapsed

    def io(n: int) -> float:
        start = perf()
        out = Parallel(n_jobs=IO_WORKERS, backend="threading")(delayed(_nap)(x, z.io_sleep)
                                                                for x in range(n))
        elapsed = perf() - start
        _check(out, n)
        return elapsed

    yield {"map": map_, "io": io}


@dataclass(frozen=True)
class Peer:
    name: str
    kind: str                      # which taskrun side it is compared with: "sync" or "async"
    needs: str | None              # the module that must be importable
    start: Callable[[Sizes], contextlib.AbstractContextManager[dict[str, Timed]]]
    missing: dict[str, str]        # workload -> why this peer has no such row


PEERS = [
    Peer(f"ThreadPoolExecutor ({MAP_WORKERS}; {IO_WORKERS} for I/O)", "sync", None, thread_pool, {}),
    Peer("asyncio.gather", "async", None, asyncio_gather, {}),
    Peer("Dask futures (LocalCluster 2x50)", "sync", "distributed", dask_futures, {}),
    Peer("Ray tasks (local, num_cpus=2)", "sync", "ray", ray_tasks, {}),
    Peer("joblib threading", "sync", "joblib", joblib_threading,
         {"chain": "joblib has no dependencies between calls"}),
]
WORKLOADS = ("map", "chain", "io")


def _label(workload: str, z: Sizes) -> str:
    return {"map": f"no-op map {z.map_n:,}", "chain": f"chain {z.chain_n:,} links",
            "io": f"I/O {z.io_n:,} x {z.io_sleep * 1000:g} ms, {IO_WORKERS} at once"}[workload]


def _n(workload: str, z: Sizes) -> int:
    return {"map": z.map_n, "chain": z.chain_n, "io": z.io_n}[workload]


def _row(peer: Peer, workload: str, z: Sizes, ours: Timed, theirs: Timed, pairs: int) -> Result:
    n = _n(workload, z)
    side = "async tasks, async with" if peer.kind == "async" else "sync tasks"
    label = f"peers: {_label(workload, z)}: taskrun ({side}) / {peer.name}"
    p = alternate(functools.partial(ours, n), functools.partial(theirs, n), pairs)
    r = Result("peers", label, taskrun=p.median_a / n * US, baseline=p.median_b / n * US, unit="µs/task",
               ratio=p.ratio, samples={"peer": peer.name, "workload": workload, "kind": peer.kind, "n": n,
                                       "seconds": p.as_dict()})
    r.notes.append(f"{peer.name} {workload}: {r.baseline:.1f} µs/task = "
                   f"{statistics.median(b / a for a, b in zip(p.a, p.b, strict=True)):.2f} x taskrun")
    return r


def bench_peers(cfg: Config) -> list[Result]:
    z = sizes(cfg)
    pairs = max(1, cfg.pairs - 2)  # peers like Dask and Ray cost ms per task: 1 pair quick, 3 full
    out: list[Result] = []
    for peer in PEERS:
        if peer.needs is not None and importlib.util.find_spec(peer.needs) is None:
            out += [unavailable("peers", f"peers: {_label(w, z)} / {peer.name}",
                                f"{peer.needs} is not installed (pip install -e '.[peers]')")
                    for w in WORKLOADS]
            continue
        ours = taskrun_side(peer.kind, z)
        try:
            with peer.start(z) as theirs:
                for w in WORKLOADS:
                    label = f"peers: {_label(w, z)} / {peer.name}"
                    if w in peer.missing:
                        out.append(unavailable("peers", label, peer.missing[w]))
                        continue
                    try:
                        out.append(_row(peer, w, z, ours[w], theirs[w], pairs))
                    except Exception as exc:  # one broken peer workload must not stop the rest
                        out.append(failed("peers", label, exc))
        except Exception as exc:  # the peer would not start here: say why
            why = f"did not start: {type(exc).__name__}: {exc}"
            out.append(unavailable("peers", f"peers: {peer.name}", why))
    return out


def peers_table(results: list[Result]) -> str | None:
    """The peers rows pivoted: one line per system, µs per task and x taskrun per workload."""
    rows = [r for r in results if r.key == "peers" and "peer" in r.samples]
    if not rows:
        return None
    z_n = {r.samples["workload"]: r.samples["n"] for r in rows}
    heads = [f"{w} (n={z_n[w]:,})" for w in WORKLOADS if w in z_n]
    lines = ["| system | " + " | ".join(f"{h}: µs/task | x taskrun" for h in heads) + " |",
             "|---|" + "---|---|" * len(heads)]
    by_peer: dict[str, dict[str, Result]] = {}
    ours: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        by_peer.setdefault(r.samples["peer"], {})[r.samples["workload"]] = r
        if r.taskrun is not None:
            ours.setdefault((r.samples["kind"], r.samples["workload"]), []).append(r.taskrun)
    for kind, name in (("sync", "taskrun, sync tasks"), ("async", "taskrun, async tasks")):
        cells = []
        for w in WORKLOADS:
            if w not in z_n:
                continue
            got = ours.get((kind, w))
            cells.append(f"{statistics.median(got):.1f} | 1" if got else "- | -")
        if any(c != "- | -" for c in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for peer, by_w in by_peer.items():
        cells = []
        for w in WORKLOADS:
            if w not in z_n:
                continue
            r = by_w.get(w)
            if r is None or r.baseline is None or r.ratio is None:
                cells.append("- | -")
            else:
                cells.append(f"{r.baseline:,.1f} | {1 / r.ratio:.2f}")
        lines.append(f"| {peer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
