"""The multi-process workloads: process pool speed-up, DaskTaskRunner overhead.

``python -m benchmarks.workloads_parallel [--quick]`` prints both figures; the
suite (``python -m benchmarks``) calls :func:`bench_process_speedup` and
:func:`bench_dask_overhead` and turns their dicts into table rows. In both,
``ratio`` is taskrun seconds / baseline seconds (lower is better), and each
pair of measurements runs taskrun and the baseline back to back, so both see
the same machine noise.

- Process pool: ``n`` runs of a pure-Python loop calibrated to ~50 ms each,
  through ``ProcessPoolTaskRunner(max_workers=cpu_count)`` -- pool start-up
  (``spawn``) and shut-down included -- against the same calls made one after
  another in this process. Target: a speed-up of at least 1.7x on 2 cores,
  that is a ratio of at most 1/1.7.
- Dask: ``n`` no-op runs through ``DaskTaskRunner(address=...)`` against bare
  ``client.map`` + ``client.gather`` on the same LocalCluster (2 workers x 1
  thread), per task. Target: at most 1.3x the bare cost.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from typing import Any

from taskrun import task

PROCESS_TASKS = 64
PROCESS_TASK_SECONDS = 0.050
PROCESS_TARGET_SPEEDUP = 1.7
DASK_TARGET_RATIO = 1.3


def spin(n: int) -> int:
    """A pure-Python CPU-bound loop (holds the GIL the whole time)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


@task
def spin_task(n: int) -> int:
    return spin(n)


def noop(x: int) -> int:
    return x


@task
def noop_task(x: int) -> int:
    return x


def _calibrate(seconds: float) -> int:
    """Loop count for ``spin`` to take about ``seconds`` here (best of a few tries)."""
    n = 100_000
    best = min(_time(spin, n) for _ in range(5))
    return max(1, int(n * seconds / best))


def _time(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- process pool


def bench_process_speedup(quick: bool) -> dict[str, Any]:
    """ProcessPoolTaskRunner on a CPU-bound map vs the same calls made sequentially.

    ``concurrent.futures.ProcessPoolExecutor`` (``spawn``) runs the same map in
    each round too, as a reference for what the machine allows.
    """
    import concurrent.futures
    import multiprocessing

    from taskrun import ProcessPoolTaskRunner

    workers = os.cpu_count() or 1
    pairs = 1 if quick else 4
    n = _calibrate(PROCESS_TASK_SECONDS)
    sizes = [n] * PROCESS_TASKS
    expected = [spin(n)] * PROCESS_TASKS

    def sequential() -> float:
        start = time.perf_counter()
        values = [spin(size) for size in sizes]
        elapsed = time.perf_counter() - start
        assert values == expected
        return elapsed

    def pool() -> float:
        start = time.perf_counter()
        with ProcessPoolTaskRunner(max_workers=workers) as runner:
            values = runner.map(spin_task, {"n": sizes}).result()
        elapsed = time.perf_counter() - start
        assert values == expected
        return elapsed

    def stdlib() -> float:
        start = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as executor:
            values = list(executor.map(spin, sizes))
        elapsed = time.perf_counter() - start
        assert values == expected
        return elapsed

    taskrun_s: list[float] = []
    baseline_s: list[float] = []
    stdlib_s: list[float] = []
    for _ in range(pairs):
        baseline_s.append(sequential())
        taskrun_s.append(pool())
        stdlib_s.append(stdlib())
    ratios = [t / b for t, b in zip(taskrun_s, baseline_s, strict=True)]
    ratio = statistics.median(ratios)
    stdlib_speedup = statistics.median(b / s for b, s in zip(baseline_s, stdlib_s, strict=True))
    return {
        "label": f"ProcessPoolTaskRunner({workers}): {PROCESS_TASKS} x ~50 ms CPU vs sequential",
        "seconds": {"taskrun": statistics.median(taskrun_s), "baseline": statistics.median(baseline_s),
                    "concurrent.futures": statistics.median(stdlib_s)},
        "ratio": ratio,
        "speedup": 1 / ratio,
        "stdlib_speedup": stdlib_speedup,
        "target": 1 / PROCESS_TARGET_SPEEDUP,
        "workers": workers,
        "pairs": pairs,
        "samples": {"taskrun": taskrun_s, "baseline": baseline_s, "concurrent.futures": stdlib_s},
        "note": (f"speed-up {1 / ratio:.2f}x (target >= {PROCESS_TARGET_SPEEDUP}x; pool start-up and "
                 f"shut-down included); concurrent.futures.ProcessPoolExecutor, same rounds: "
                 f"{stdlib_speedup:.2f}x"),
    }


# ----------------------------------------------------------------------------- Dask


def bench_dask_overhead(quick: bool) -> dict[str, Any]:
    """DaskTaskRunner vs bare client.map on one LocalCluster, per task."""
    import distributed

    from taskrun.dask import DaskTaskRunner

    n = 300 if quick else 2_000
    pairs = 1 if quick else 3
    expected = list(range(n))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=logging.ERROR,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, \
            DaskTaskRunner(address=cluster.scheduler_address) as runner:

        def bare() -> float:
            start = time.perf_counter()
            values = client.gather(client.map(noop, range(n), pure=False))
            elapsed = time.perf_counter() - start
            assert values == expected
            return elapsed / n

        def ours() -> float:
            start = time.perf_counter()
            values = runner.map(noop_task, {"x": range(n)}).result()
            elapsed = time.perf_counter() - start
            assert values == expected
            return elapsed / n

        bare()  # warm-up: workers import the functions once
        ours()
        taskrun_s: list[float] = []
        baseline_s: list[float] = []
        for _ in range(pairs):
            taskrun_s.append(ours())
            baseline_s.append(bare())
    ratios = [t / b for t, b in zip(taskrun_s, baseline_s, strict=True)]
    return {
        "label": f"DaskTaskRunner vs client.map, {n} no-op tasks, LocalCluster 2x1 (per task)",
        "seconds": {"taskrun": statistics.median(taskrun_s), "baseline": statistics.median(baseline_s)},
        "ratio": statistics.median(ratios),
        "target": DASK_TARGET_RATIO,
        "tasks": n,
        "pairs": pairs,
        "samples": {"taskrun": taskrun_s, "baseline": baseline_s, "ratios": ratios},
        "note": (f"per task: taskrun {statistics.median(taskrun_s) * 1e6:.0f} us, "
                 f"client.map {statistics.median(baseline_s) * 1e6:.0f} us"),
    }


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    process = bench_process_speedup(quick)
    seconds = process["seconds"]
    print(f"process pool : {process['note']}  "
          f"(taskrun {seconds['taskrun']:.2f} s, sequential {seconds['baseline']:.2f} s)")
    try:
        dask = bench_dask_overhead(quick)
    except ImportError as exc:
        print(f"dask         : not measured ({exc}); pip install 'taskrun[dask]'")
    else:
        print(f"dask         : ratio {dask['ratio']:.2f} (target <= {DASK_TARGET_RATIO}); {dask['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
