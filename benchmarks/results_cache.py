"""Storage-layer cost of a cache hit and a cache write, against bare pickle files.

    python -m benchmarks.results_cache [--runs N] [--rounds R]

- hit: ``config.begin(view).lookup()`` (key from INPUTS, read, header and checksum,
  unpickle) vs a bare ``pickle.load`` of a file;
- write: ``config.begin(view).store(value)`` (key, pickle, record, temp file + fsync +
  rename) vs a bare ``pickle.dump`` to a temp file + fsync + ``os.replace``.

Full runs (the engine included): a ``ThreadPoolTaskRunner(max_workers=1).map`` of N runs
of a cached task, per run, one worker so that runs are as serial as the bare loops:

- map hit: every run served from the store, vs the bare ``pickle.load`` loop (and, for
  reference, vs the same map of an uncached task: what a hit adds to a run);
- map write: every run executes and writes its record, vs the bare atomic dump loop.

The two sides alternate, round by round; the figure is the median per-round ratio.
Targets (issue 9): hit at most 3 times the bare load, write at most 1.5 times the bare dump.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskrun import ThreadPoolTaskRunner, task
from taskrun._results._policies import INPUTS
from taskrun._results._service import results_config_from_options


def work(x: int) -> dict[str, Any]:
    return {"x": x, "values": list(range(20))}


@dataclass
class View:
    parameters: dict[str, Any]
    task_fn: Callable[..., Any] = work
    task_name: str = "work"
    task_run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    flow_run_id: uuid.UUID | None = None
    flow_parameters: dict[str, Any] | None = None
    tags: frozenset[str] = frozenset()
    context: Any = None


def _per_run(fn: Callable[[], None], runs: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="taskrun-bench-") as tmp:
        root = pathlib.Path(tmp)
        config = results_config_from_options(cache_policy=INPUTS, result_storage=root / "store")
        assert config is not None
        bare = root / "bare"
        bare.mkdir()
        views = [View({"x": i}) for i in range(args.runs)]
        values = [work(i) for i in range(args.runs)]

        def taskrun_write() -> None:
            for v, value in zip(views, values, strict=True):
                config.begin(v).store(value)

        def bare_write() -> None:
            for i, value in enumerate(values):
                final = bare / f"{i}.pkl"
                tmp_path = bare / f".{i}.tmp-{uuid.uuid4().hex}"
                with open(tmp_path, "wb") as f:
                    pickle.dump(value, f, protocol=5)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp_path, final)

        def taskrun_hit() -> None:
            for v in views:
                if config.begin(v).lookup() is None:
                    raise AssertionError("expected a hit")

        def bare_load() -> None:
            for i in range(len(values)):
                with open(bare / f"{i}.pkl", "rb") as f:
                    pickle.load(f)

        plain = task(work)
        cached = task(cache_policy=INPUTS, result_storage=str(root / "runs"))(work)
        xs = list(range(args.runs))
        fresh = [0]

        def map_of(t: Any, inputs: list[int]) -> None:
            with ThreadPoolTaskRunner(max_workers=1) as runner:
                futures = runner.map(t, {"x": inputs})
                futures.result()

        def map_off() -> None:
            map_of(plain, xs)

        map_of(cached, xs)  # the records the hit map reads

        def map_hit() -> None:
            map_of(cached, xs)

        def map_write() -> None:
            fresh[0] += 1
            base_x = fresh[0] * 1_000_000  # new inputs: every run misses and writes
            map_of(cached, [base_x + x for x in xs])

        rows = []
        for label, ours, theirs, target in (
            ("cache write / atomic pickle.dump+fsync+rename", taskrun_write, bare_write, 1.5),
            ("cache hit / pickle.load of a file", taskrun_hit, bare_load, 3.0),
            ("map run, hit / pickle.load of a file", map_hit, bare_load, 3.0),
            ("map run, hit / map run, caching off", map_hit, map_off, None),
            ("map run, write / atomic pickle.dump+rename", map_write, bare_write, 1.5),
        ):
            ratios: list[float] = []
            mine: list[float] = []
            base: list[float] = []
            for r in range(args.rounds):
                pair = [(ours, mine), (theirs, base)]
                if r % 2:
                    pair.reverse()
                for fn, out in pair:
                    out.append(_per_run(fn, args.runs))
                ratios.append(mine[-1] / base[-1])
            rows.append((label, statistics.median(mine), statistics.median(base), statistics.median(ratios),
                         target))
    print(f"{'workload':<48} {'taskrun':>12} {'baseline':>12} {'ratio':>7} {'target':>7}")
    for label, a, b, ratio, target in rows:
        verdict = "" if target is None else ("ok" if ratio <= target else "MISS")
        goal = "-" if target is None else f"≤ {target}"
        print(f"{label:<48} {a * 1e6:>9.1f} µs {b * 1e6:>9.1f} µs {ratio:>7.2f} {goal:>7} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
