"""``python -m benchmarks``: run the workloads, print the table, save JSON and plot."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import isolated, parallel, peers, workloads
from ._watchdog import Watchdog
from .config import Config, make_config
from .report import Result, failed, fmt_value, metadata, save_json, save_plot, table


@dataclass(frozen=True)
class Workload:
    key: str
    about: str
    run: Callable[[Config], list[Result]]
    must: float | None = None  # so that a crash counts as a "must" miss under --check


WORKLOADS = [
    Workload("sync", "ThreadPoolTaskRunner(8).map of 20k sync no-ops vs ThreadPoolExecutor(8)",
             workloads.bench_sync, 1.5),
    Workload("async", "async with + map of 20k async no-ops vs asyncio.gather", workloads.bench_async, 2.0),
    Workload("trio", "the same under trio vs a trio nursery", workloads.bench_trio, 2.5),
    Workload("chain", "5k runs each wait_for the previous, per link vs sync map task",
             workloads.bench_chain, 2.0),
    Workload("diamond", "1k x (root, fan-out 10, fan-in 1), futures as parameters", workloads.bench_diamond),
    Workload("io", "2k x 10 ms sleeps, 100 workers, sync and async: wall / ideal", workloads.bench_io),
    Workload("scale", "async map per-task cost at 1k..1M; ratio 1M / 10k", workloads.bench_scale, 1.3),
    Workload("memory", "bytes per pending run vs bare asyncio tasks (subprocesses)",
             isolated.bench_memory, 3000),
    Workload("import", "`import taskrun` minus `python -c pass` (subprocesses)", isolated.bench_import),
    Workload("process", "ProcessPoolTaskRunner speed-up (benchmarks/workloads_parallel.py)",
             parallel.bench_process),
    Workload("dask", "DaskTaskRunner vs client.map (needs the dask extra)", parallel.bench_dask),
    Workload("peers", "map, chain, 10 ms I/O: taskrun beside ThreadPoolExecutor, asyncio, Dask, Ray, joblib",
             peers.bench_peers),
]
ALIASES = {"mem": "memory", "imports": "import", "chains": "chain", "dag": "diamond", "scaling": "scale"}
BY_KEY = {w.key: w for w in WORKLOADS}
# Per workload: a run past this is taken as hung (see _watchdog.py). Exit code 3.
WORKLOAD_LIMIT_QUICK = 180.0
WORKLOAD_LIMIT_FULL = 900.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    listing = "\n".join(f"  {w.key:<8} {w.about}" for w in WORKLOADS)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="taskrun against its baselines, alternated in one process; prints medians, "
                    "ratios taskrun/baseline and the issue's targets.",
        epilog=f"workloads:\n{listing}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer pairs (< 1 minute)")
    parser.add_argument("--json", metavar="FILE", help="save every sample and figure as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw per-task cost against run size")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these workloads")
    parser.add_argument("--pairs", type=int, help="alternated pairs per workload (default 3 quick, 5 full)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any 'must' bound is missed")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--profile", metavar="NAME",
                        choices=["sync", "async", "trio", "chain", "diamond", "io-sync", "io-async", "scale"],
                        help="instead of the table: cProfile (all threads) of one taskrun run of NAME")
    parser.add_argument("--profile-out", metavar="FILE.prof", help="with --profile: also dump pstats here")
    args = parser.parse_args(argv)
    if args.only:
        keys = []
        for name in args.only:
            key = ALIASES.get(name, name)
            if key not in BY_KEY:
                parser.error(f"unknown workload {name!r}; choose from {', '.join(BY_KEY)}")
            keys.append(key)
        args.only = keys
    if args.pairs is not None and args.pairs < 1:
        parser.error("--pairs must be >= 1")
    return args


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _show(key: str, r: Result) -> None:
    if r.judged is None:
        shown = r.verdict
    else:
        value = f"{r.judged:.3f}" if r.judge == "ratio" else fmt_value(r.judged, r.unit)
        shown = f"{value} ({r.verdict})"
    _say(f"[{key}]   {r.workload}: {shown}")


def _finish(args: argparse.Namespace, cfg: Config, results: list[Result], elapsed: float,
            cut_short: str | None = None) -> None:
    meta = metadata(cfg.quick)
    meta["elapsed_s"] = round(elapsed, 1)
    if cut_short:
        meta["cut_short"] = cut_short
    print(f"taskrun benchmarks ({meta['mode']} run, {meta['cpus']} CPUs, Python {meta['python']}, "
          f"{elapsed:.0f} s)" + (f" -- CUT SHORT: {cut_short}" if cut_short else ""))
    print(table(results, markdown=args.markdown), flush=True)
    pivot = peers.peers_table(results)
    if pivot:
        print(f"\npeers ({meta['date']}, {meta['cpus']} CPUs, {meta['platform']}, Python {meta['python']}):")
        print(pivot, flush=True)
    if args.json:
        save_json(args.json, results, meta)
        _say(f"saved {args.json}")
    if args.plot and not cut_short:
        if save_plot(args.plot, results, meta):
            _say(f"saved {args.plot}")
        else:
            _say("no plot: no system was measured at two sizes or more (run the 'scale' workload)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args.quick, args.pairs)
    if args.profile:
        from .profiling import profile

        print(profile(args.profile, cfg, out=args.profile_out))
        return 0
    selected = [w for w in WORKLOADS if not args.only or w.key in args.only]
    started = time.perf_counter()
    results: list[Result] = []

    def expired(what: str) -> None:
        results.append(failed(what, BY_KEY[what].about, TimeoutError(f"ran past {limit:.0f} s (hung?)"),
                              must=BY_KEY[what].must))
        _finish(args, cfg, list(results), time.perf_counter() - started, cut_short=f"'{what}' hung")

    limit = WORKLOAD_LIMIT_QUICK if cfg.quick else WORKLOAD_LIMIT_FULL
    watchdog = Watchdog(expired)
    for w in selected:
        _say(f"[{w.key}] {w.about} ...")
        t0 = time.perf_counter()
        watchdog.arm(limit, w.key)
        try:
            rows = w.run(cfg)
        except Exception as exc:  # report it as a row, go on with the rest
            rows = [failed(w.key, w.about, exc, must=w.must)]
        finally:
            watchdog.disarm()
        for r in rows:
            _show(w.key, r)
        _say(f"[{w.key}] {time.perf_counter() - t0:.1f} s")
        results.extend(rows)
    _finish(args, cfg, results, time.perf_counter() - started)
    misses = [r for r in results if r.fails_check()]
    if args.check and misses:
        _say("--check: 'must' missed by " + ", ".join(r.key for r in misses))
        return 1
    return 0
