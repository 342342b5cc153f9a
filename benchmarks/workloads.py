"""The in-process workloads: alternate taskrun and its baseline, build table rows.

Targets and "must" bounds are the issue's (benchmark suite, issue 3).
"""

from __future__ import annotations

import functools
import statistics

from . import systems as s
from ._timing import Pairs, alternate, settle
from .config import Config
from .report import Result

US = 1e6


def _per_task_row(key: str, workload: str, pairs_a_b: Pairs, n: int, target: float, must: float) -> Result:
    return Result(key, workload, taskrun=pairs_a_b.median_a / n * US, baseline=pairs_a_b.median_b / n * US,
                  unit="µs/task", ratio=pairs_a_b.ratio, target=target, must=must,
                  samples={"n": n, "seconds": pairs_a_b.as_dict()})


def bench_sync(cfg: Config) -> list[Result]:
    n = cfg.map_n
    p = alternate(lambda: s.taskrun_sync_map(n), lambda: s.executor_sync_map(n), cfg.pairs)
    return [_per_task_row("sync", f"sync map {n // 1000}k, 8 workers / ThreadPoolExecutor(8)",
                          p, n, 1.0, 1.5)]


def bench_async(cfg: Config) -> list[Result]:
    n = cfg.map_n
    p = alternate(lambda: s.taskrun_async_map(n, "asyncio"), lambda: s.asyncio_gather(n), cfg.pairs)
    return [_per_task_row("async", f"async map {n // 1000}k (asyncio) / asyncio.gather", p, n, 1.5, 2.0)]


def bench_trio(cfg: Config) -> list[Result]:
    n = cfg.map_n
    p = alternate(lambda: s.taskrun_async_map(n, "trio"), lambda: s.trio_nursery(n), cfg.pairs)
    return [_per_task_row("trio", f"async map {n // 1000}k (trio) / trio nursery", p, n, 2.0, 2.5)]


def bench_chain(cfg: Config) -> list[Result]:
    n = cfg.chain_n
    # The check alternates 3 pairs here too; a chain run is serial and noisier.
    p = alternate(lambda: s.taskrun_chain(n), lambda: s.taskrun_sync_map(n), max(cfg.pairs, 3))
    r = _per_task_row("chain", f"chain {n // 1000}k wait_for links / taskrun sync map task", p, n, 1.5, 2.0)
    r.notes.append(f"per link {r.taskrun:.1f} µs vs {r.baseline:.1f} µs per task of a {n}-run "
                   "sync map on the same 8-worker runner")
    return [r]


def bench_diamond(cfg: Config) -> list[Result]:
    d = cfg.diamonds
    runs = d * (s.FAN + 2)
    p = alternate(lambda: s.taskrun_diamonds(d), lambda: s.executor_diamonds(d), cfg.pairs)
    r = Result("diamond", f"diamond DAG {d} x (1 -> {s.FAN} -> 1) / ThreadPoolExecutor(8)",
               taskrun=p.median_a / runs * US, baseline=p.median_b / runs * US, unit="µs/task",
               ratio=p.ratio, samples={"diamonds": d, "runs": runs, "seconds": p.as_dict()})
    r.notes.append(f"{runs} runs; dependencies are futures passed as parameters; the baseline "
                   "blocks on .result() inside its workers. No target in the issue: reported only.")
    return [r]


def bench_io(cfg: Config) -> list[Result]:
    n, sec, w = cfg.io_n, cfg.io_sleep, cfg.io_workers
    ideal = n * sec / w
    out = []
    for key, label, tr, bare, bare_name in (
        ("io-sync", "sync", s.taskrun_io_sync, s.executor_io_sync, f"ThreadPoolExecutor({w})"),
        ("io-async", "async", s.taskrun_io_async, s.asyncio_io, f"asyncio.gather + Semaphore({w})"),
    ):
        p = alternate(functools.partial(tr, n, sec, w), functools.partial(bare, n, sec, w), cfg.pairs)
        r = Result(key, f"I/O {label} {n // 1000}k x {sec * 1000:g} ms, {w} workers: wall / ideal",
                   taskrun=p.median_a, baseline=ideal, unit="s",
                   ratio=statistics.median(a / ideal for a in p.a), target=1.2,
                   samples={"n": n, "sleep": sec, "workers": w, "ideal": ideal, "seconds": p.as_dict()})
        r.notes.append(f"ideal = {n} x {sec * 1000:g} ms / {w} = {ideal:.3f} s "
                       f"(ThreadPoolTaskRunner(max_workers={w})); {bare_name} alone: "
                       f"{p.median_b:.3f} s = {statistics.median(b / ideal for b in p.b):.2f} x ideal")
        out.append(r)
    return out


def bench_scale(cfg: Config) -> list[Result]:
    """Per-task cost of the async map at each size, with asyncio.gather (and, up to
    ``sync_curve_max``, the sync map and ThreadPoolExecutor) beside it for the plot.

    Each round runs every size once (small sizes a few times, median taken), the
    systems alternating at each size; the ratio is the median over rounds of
    per-task(big) / per-task(small) of the same round.
    """
    sizes = cfg.scale_sizes
    big, small = sizes[-1], cfg.scale_small
    systems = {
        "taskrun async map": lambda n: s.taskrun_async_map(n, "asyncio"),
        "asyncio.gather": s.asyncio_gather,
        "taskrun sync map (8 workers)": s.taskrun_sync_map,
        "ThreadPoolExecutor(8)": s.executor_sync_map,
    }
    sync_only = {"taskrun sync map (8 workers)", "ThreadPoolExecutor(8)"}

    def at(n: int) -> list[str]:
        return [k for k in systems if k not in sync_only or n <= cfg.sync_curve_max]

    for n in sizes:  # warm-up at the cheap sizes
        if n <= small:
            for name in at(n):
                settle()
                systems[name](n)
    per_task: dict[str, dict[int, list[float]]] = {k: {} for k in systems}
    for _ in range(cfg.scale_rounds):
        for n in sizes:
            reps = max(1, min(5, small // n))
            samples: dict[str, list[float]] = {k: [] for k in at(n)}
            for _ in range(reps):
                for name in at(n):
                    settle()
                    samples[name].append(systems[name](n) / n)
            for name, xs in samples.items():
                per_task[name].setdefault(n, []).append(statistics.median(xs))
    tr = per_task["taskrun async map"]
    ratios = [b / a for a, b in zip(tr[small], tr[big], strict=True)]
    curves = {name: {n: statistics.median(v) * US for n, v in by_n.items()}
              for name, by_n in per_task.items() if by_n}
    r = Result("scale", f"async map per-task cost at {big:,} / at {small:,}",
               taskrun=curves["taskrun async map"][big], baseline=curves["taskrun async map"][small],
               unit="µs/task", ratio=statistics.median(ratios), target=1.1, must=1.3,
               samples={"per_task_seconds": per_task, "ratios": ratios}, curves=curves)
    for n in sizes:
        line = ", ".join(f"{name} {curves[name][n]:.1f}" for name in systems if n in curves[name])
        r.notes.append(f"n={n:,}: {line} µs/task")
    base = per_task["asyncio.gather"]
    base_ratio = statistics.median(b / a for a, b in zip(base[small], base[big], strict=True))
    r.notes.append(f"asyncio.gather's own ratio {big:,} / {small:,} in the same rounds: {base_ratio:.2f}")
    if big < 1_000_000:
        r.notes.append(f"quick mode: largest size {big:,}; the full run goes to 1,000,000")
    return [r]
