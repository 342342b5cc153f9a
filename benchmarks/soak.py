"""Soak: many runner lifetimes and one long ``imap``, watching for anything that grows.

usage: python -m benchmarks.soak [--quick]

1. ``rounds`` times (200; 20 with ``--quick``): enter a ``ThreadPoolTaskRunner``,
   ``map`` 1,000 runs, wait, exit; then a few process-pool lifetimes the same way.
   Reported: RSS after the first round and after the last (growth), threads
   and child processes left, ``/dev/shm`` entries before and after, and every
   warning raised on the way.
2. ``imap`` of 1,000,000 items (100,000 with ``--quick``) and of 10,000, each in
   a fresh interpreter: the peak RSS of the long one over the short one
   (``imap`` keeps only ``max_in_flight`` runs alive, so it must stay near 1x;
   the baseline measured before issue 14 was 1.01x).

Exit code 1 when a thread, process or ``/dev/shm`` entry is left, a warning was
raised, or the ``imap`` ratio passes 1.10.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from typing import Any

from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner, task

IMAP_RATIO_LIMIT = 1.10


@task
def inc(x: int) -> int:
    return x + 1


def _status(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _children() -> int:
    """Live child processes of this one (multiprocessing's resource tracker aside)."""
    me = str(os.getpid())
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z" and not _is_resource_tracker(pid):
            count += 1
    return count


def _is_resource_tracker(pid: str) -> bool:
    """multiprocessing's one helper, alive as long as this process: not a leak."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"multiprocessing.resource_tracker" in f.read()
    except OSError:
        return False


def _shm() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def _task() -> Any:
    # By its importable name, not ``__main__``: process-pool workers import it.
    return importlib.import_module("benchmarks.soak").inc


def _rounds(runner_type: type[Any], rounds: int, runs: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    body = _task()
    threads0, children0, shm0 = threading.active_count(), _children(), _shm()
    rss_first = 0
    started = time.perf_counter()
    for i in range(rounds):
        with runner_type(**kwargs) as runner:
            values = runner.map(body, {"x": range(runs)}).result()
        assert values[-1] == runs, values[-1]
        if i == 0:
            gc.collect()
            rss_first = _status("VmRSS")
    gc.collect()
    time.sleep(0.2)  # let exiting children be reaped
    rss_last = _status("VmRSS")
    return {
        "runner": runner_type.__name__, "rounds": rounds, "runs_per_round": runs,
        "seconds": round(time.perf_counter() - started, 1),
        "rss_after_first_mb": round(rss_first / 2**20, 1),
        "rss_after_last_mb": round(rss_last / 2**20, 1),
        "rss_growth_mb": round((rss_last - rss_first) / 2**20, 1),
        "threads_left": threading.active_count() - threads0,
        "processes_left": _children() - children0,
        "shm_left": sorted(_shm() - shm0),
    }


def imap_child(n: int) -> None:
    """(fresh interpreter) imap ``n`` items; print the peak RSS growth as JSON."""
    base = _status("VmHWM")
    total = 0
    started = time.perf_counter()
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        for value in runner.imap(inc, {"x": range(n)}, max_in_flight=64):
            total += value
    assert total == n * (n + 1) // 2, total
    peak = _status("VmHWM")
    print(json.dumps({"n": n, "base": base, "peak": peak,
                      "seconds": round(time.perf_counter() - started, 1)}))


def _imap(n: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--imap-child", str(n)],
                         capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 rounds and a 100k imap")
    parser.add_argument("--imap-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.imap_child:
        imap_child(args.imap_child)
        return 0
    rounds, long_imap = (20, 100_000) if args.quick else (200, 1_000_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = [_rounds(ThreadPoolTaskRunner, rounds, 1000, {"max_workers": 8}),
                _rounds(ProcessPoolTaskRunner, max(2, rounds // 20), 200, {"max_workers": 2})]
    short, long = _imap(10_000), _imap(long_imap)
    ratio = long["peak"] / short["peak"]
    report = {
        "lifetimes": rows,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
        "imap": {"short": short, "long": long, "peak_rss_ratio": round(ratio, 3)},
    }
    for row in rows:
        print(f"{row['runner']}: {row['rounds']} x (enter / map {row['runs_per_round']} / exit) "
              f"in {row['seconds']} s; RSS {row['rss_after_first_mb']} -> {row['rss_after_last_mb']} MB "
              f"({row['rss_growth_mb']:+} MB); threads left {row['threads_left']}, "
              f"processes left {row['processes_left']}, /dev/shm entries left {len(row['shm_left'])}")
    print(f"warnings: {len(caught)}" + "".join(f"\n  {w}" for w in report["warnings"]))
    print(f"imap peak RSS: {long['n']:,} items {long['peak'] / 2**20:.1f} MB ({long['seconds']} s) vs "
          f"{short['n']:,} items {short['peak'] / 2**20:.1f} MB: {ratio:.3f}x (limit {IMAP_RATIO_LIMIT}x)")
    print(json.dumps(report))
    leaked = any(r["threads_left"] or r["processes_left"] or r["shm_left"] for r in rows)
    return 1 if leaked or caught or ratio > IMAP_RATIO_LIMIT else 0


if __name__ == "__main__":
    sys.exit(main())
