"""``--profile NAME``: run the taskrun side of one workload under cProfile, every thread.

cProfile only sees the thread that enables it, and a sync-world runner does its
work on a loop thread and worker threads. So a profile hook is installed with
``threading.setprofile`` as well: every thread started during the run (loop host,
workers) enables its own ``cProfile.Profile``, and the stats of all of them are
merged at the end. The clock is each thread's CPU time (``time.thread_time``),
so time a thread spends blocked (an idle worker on its queue, the caller in
``result()``) does not drown the hot path. The figures include the profiler's own overhead (several
times the real cost per call); read them as *where* time goes, not how much.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import systems as s
from .config import Config


def targets(cfg: Config) -> dict[str, Callable[[], float]]:
    n, w = cfg.map_n, cfg.io_workers
    return {
        "sync": lambda: s.taskrun_sync_map(n),
        "async": lambda: s.taskrun_async_map(n, "asyncio"),
        "trio": lambda: s.taskrun_async_map(n, "trio"),
        "chain": lambda: s.taskrun_chain(cfg.chain_n),
        "diamond": lambda: s.taskrun_diamonds(cfg.diamonds),
        "io-sync": lambda: s.taskrun_io_sync(cfg.io_n, cfg.io_sleep, w),
        "io-async": lambda: s.taskrun_io_async(cfg.io_n, cfg.io_sleep, w),
        "scale": lambda: s.taskrun_async_map(100_000, "asyncio"),
    }


def profile(name: str, cfg: Config, top: int = 30, out: str | None = None) -> str:
    """Profile one run (after a warm-up run) and return the report text."""
    fn = targets(cfg)[name]
    fn()  # warm-up: imports, caches
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_: Any) -> None:
        prof = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(prof)
        prof.enable()  # replaces this hook for the rest of the thread's life

    main = cProfile.Profile(time.thread_time)
    threading.setprofile(start_in_thread)
    try:
        main.enable()
        try:
            fn()
        finally:
            main.disable()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    buf = io.StringIO()
    stats = pstats.Stats(main, stream=buf)
    for prof in profiles:
        try:
            stats.add(prof)
        except TypeError:  # a thread whose profile never recorded anything
            pass
    if out:
        stats.dump_stats(out)
    buf.write(f"cProfile of taskrun '{name}' ({len(profiles)} other threads merged); "
              f"per-thread CPU time, profiler overhead included\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


if __name__ == "__main__":  # python -m benchmarks.profiling NAME
    from .config import make_config

    print(profile(sys.argv[1], make_config(quick=True)))
