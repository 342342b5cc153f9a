"""``python -m benchmarks.limits``: the limits room's figures, printed side by side.

- uncontended ``concurrency()`` enter + exit in one process (target <= 2 us), with
  a bare ``threading.Lock`` ``with`` as the machine's yardstick;
- 10k mixed sync/async acquisitions under limits 1, 3 and 8: the highest
  concurrency observed never exceeds the limit and every acquisition completes;
- a 20k sync map under a tag limit that never binds against the same map without
  tags, alternately in one process (target: <= 1.1x);
- 10k mixed sync/async *runs* under tag limits 1, 3 and 8 on a thread pool runner;
- ``rate_limit`` at 100/s over 10 s from 8 concurrent runs (target: within +-5 % of 100/s).

``--quick`` shortens the rate run to 3 s and the map to 3 pairs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import taskrun.limits as limits
from taskrun._limits import concurrency, rate_limit


def _per_call(fn: object, n: int) -> float:
    start = time.perf_counter()
    fn(n)  # type: ignore[operator]
    return (time.perf_counter() - start) / n * 1e6


def _new_objects(n: int) -> None:
    for _ in range(n):
        with concurrency("bench-db"):
            pass


def _one_object(n: int) -> None:
    c = concurrency("bench-db")
    for _ in range(n):
        with c:
            pass


class _Noop:
    __slots__ = ("a", "b", "c", "d", "e")

    def __init__(self, a: str, b: int = 1, c: float | None = None, d: bool = False) -> None:
        self.a, self.b, self.c, self.d, self.e = a, b, c, d, None

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _noop_cm(n: int) -> None:
    for _ in range(n):
        with _Noop("bench-db"):
            pass


def _bare_lock(n: int) -> None:
    lock = threading.Lock()
    for _ in range(n):
        with lock:
            pass


def uncontended(rounds: int = 7, n: int = 100_000) -> dict[str, float]:
    limits.set("bench-db", 8)
    results: dict[str, list[float]] = {
        "concurrency(name) each time": [],
        "one object reused": [],
        "no-op context-manager object": [],
        "bare Lock": [],
    }
    for _ in range(rounds):  # alternate, so all three see the same noise
        results["concurrency(name) each time"].append(_per_call(_new_objects, n))
        results["one object reused"].append(_per_call(_one_object, n))
        results["no-op context-manager object"].append(_per_call(_noop_cm, n))
        results["bare Lock"].append(_per_call(_bare_lock, n))
    limits.remove("bench-db")
    return {k: statistics.median(v) for k, v in results.items()}


def load(limit: int, total: int = 10_000) -> tuple[int, int, float]:
    """``total`` acquisitions of one limit: half from 5 threads, half from asyncio and trio tasks.

    Returns (highest concurrency observed, acquisitions completed, seconds).
    """
    import anyio

    name = f"bench-load-{limit}"
    limits.set(name, limit)
    lock = threading.Lock()
    now = high = done = 0

    def inside() -> None:
        nonlocal now, high
        with lock:
            now += 1
            high = max(high, now)

    def outside() -> None:
        nonlocal now, done
        with lock:
            now -= 1
            done += 1

    sync_each = total // 2 // 5
    async_each = total // 2 // 2 // 50

    def sync_work() -> None:
        for _ in range(sync_each):
            with concurrency(name):
                inside()
                time.sleep(0)
                outside()

    async def task() -> None:
        for _ in range(async_each):
            async with concurrency(name):
                inside()
                await anyio.lowlevel.checkpoint()
                outside()

    async def loop_main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(task)

    start = time.perf_counter()
    pool = [threading.Thread(target=sync_work) for _ in range(5)]
    pool.append(threading.Thread(target=anyio.run, args=(loop_main,)))
    pool.append(threading.Thread(target=lambda: anyio.run(loop_main, backend="trio")))
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    limits.remove(name)
    return high, done, time.perf_counter() - start


def tagged_map(pairs: int = 5, n: int = 20_000) -> tuple[float, float, float]:
    """Median seconds of a sync map with a never-binding tag limit, without tags, and the ratio."""
    from taskrun import ThreadPoolTaskRunner, task

    limits.set("tag:bench-map", 1_000_000)

    @task
    def plain(x: int) -> int:
        return x

    tagged = plain.with_options(tags=["bench-map"])

    def timed(t: object) -> float:
        with ThreadPoolTaskRunner(max_workers=8) as runner:
            start = time.perf_counter()
            runner.map(t, {"x": range(n)}).result()  # type: ignore[arg-type]
            return time.perf_counter() - start

    timed(tagged), timed(plain)  # warm-up
    with_tags, without = [], []
    for _ in range(pairs):
        with_tags.append(timed(tagged))
        without.append(timed(plain))
    limits.remove("tag:bench-map")
    ratios = [a / b for a, b in zip(with_tags, without, strict=True)]
    return statistics.median(with_tags), statistics.median(without), statistics.median(ratios)


def runs_under_load(limit: int, total: int = 10_000) -> tuple[int, int, float]:
    """``total`` runs (half sync, half async) tagged with a ``tag:`` limit, on a thread pool of 8."""
    import anyio

    from taskrun import ThreadPoolTaskRunner, task

    limits.set("tag:bench-load", limit)
    lock = threading.Lock()
    now = high = done = 0

    def inside() -> None:
        nonlocal now, high
        with lock:
            now += 1
            high = max(high, now)

    def outside() -> None:
        nonlocal now, done
        with lock:
            now -= 1
            done += 1

    @task(tags=["bench-load"])
    def sync_body(i: int) -> int:
        inside()
        time.sleep(0)
        outside()
        return i

    @task(tags=["bench-load"])
    async def async_body(i: int) -> int:
        inside()
        await anyio.lowlevel.checkpoint()
        outside()
        return i

    start = time.perf_counter()
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        a = runner.map(sync_body, {"i": range(total // 2)})
        b = runner.map(async_body, {"i": range(total - total // 2)})
        a.result()
        b.result()
    limits.remove("tag:bench-load")
    return high, done, time.perf_counter() - start


def rate(seconds: float, per_second: int = 100, runs: int = 8) -> tuple[int, float]:
    """``runs`` concurrent runs on a thread pool, each taking tokens until the deadline."""
    from taskrun import ThreadPoolTaskRunner, task

    limits.set("bench-api", per_second, slot_decay_per_second=per_second)
    rate_limit("bench-api", occupy=per_second)  # empty the bucket: measure the steady rate
    count = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    @task
    def work() -> None:
        nonlocal count
        while True:
            rate_limit("bench-api")
            if time.monotonic() > deadline:
                return
            with lock:
                count += 1

    with ThreadPoolTaskRunner(max_workers=runs) as runner:
        futures = [runner.submit(work, {}) for _ in range(runs)]
        for f in futures:
            f.result()
    limits.remove("bench-api")
    return count, count / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TASKRUN_HOME", tempfile.mkdtemp(prefix="taskrun-bench-"))
    os.environ.pop("TASKRUN_LIMITS", None)
    limits.reload()
    print("uncontended concurrency() enter + exit (median of 7 x 100k, us per call):")
    figures = uncontended()
    for name, us in figures.items():
        print(f"  {name:<30} {us:6.2f} us")
    target = figures["concurrency(name) each time"]
    print(f"  target <= 2 us: {'ok' if target <= 2 else 'MISS'}")
    print("correctness under load: 10k acquisitions (5k from 5 threads, 5k from asyncio + trio tasks):")
    for limit in (1, 3, 8):
        high, done, took = load(limit)
        verdict = "ok" if high <= limit and done == 10_000 else "FAIL"
        print(f"  limit {limit}: highest observed {high}, completed {done} in {took:.2f} s: {verdict}")
    print("20k sync map, tag limit that never binds vs no tags (ThreadPoolTaskRunner(8), alternately):")
    tagged, plain, ratio = tagged_map(pairs=3 if args.quick else 5)
    print(f"  with tag {tagged * 1e3:7.1f} ms, without {plain * 1e3:7.1f} ms, ratio {ratio:.3f}x")
    print(f"  target <= 1.1x: {'ok' if ratio <= 1.1 else 'MISS'}")
    print("10k mixed sync/async runs under a tag limit (ThreadPoolTaskRunner(8)):")
    for limit in (1, 3, 8):
        high, done, took = runs_under_load(limit)
        verdict = "ok" if high <= limit and done == 10_000 else "FAIL"
        print(f"  tag limit {limit}: highest observed {high}, completed {done} in {took:.2f} s: {verdict}")
    seconds = 3.0 if args.quick else 10.0
    count, achieved = rate(seconds)
    error = (achieved - 100) / 100
    print(
        f"rate_limit 100/s over {seconds:g} s from 8 concurrent runs: {count} calls, "
        f"{achieved:.1f}/s ({error:+.1%})"
    )
    print(f"  target within +-5 %: {'ok' if abs(error) <= 0.05 else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
