"""A small pipeline that shows taskrun at work, offline: ``python -m taskrun.demo``.

It pretends to build the release index of a package mirror. Nothing touches
the network: every "download" is a short sleep (20-80 ms, fixed per file).

What it shows, step by step:

1. **Fan-out with** ``map``: ``download`` (an ``async def`` task) fetches the
   files of the main mirror, ``download_legacy`` (a plain ``def`` task, run on a
   worker thread) those of an old mirror. Both are mapped inside a
   ``tags("download")`` block, so their runs carry that tag.
2. **Retries**: ``fetch_signatures`` is flaky on purpose. Its first attempt
   raises ``ConnectionResetError``; the retry succeeds. It is deterministic: it
   fails exactly when ``get_run_context().attempt == 1``, and says so through
   ``get_run_logger()``.
3. **A tolerated failure**: the old mirror lost ``gone.tar.gz``, so one
   ``download_legacy`` run fails (no retries). ``build_index`` receives the
   legacy downloads wrapped in ``allow_failure(...)``: it starts anyway and gets
   the exception object in place of that file, which it lists as missing.
4. **Fan-in, futures as parameters**: ``build_index`` is submitted with the
   two lists of futures and the signatures future as its arguments; taskrun
   waits for them and passes their values.
5. **Ordering without data**: ``publish`` must run after ``prepare_output``
   but does not use its value: ``wait_for=[prepared]``.

The same submission code (:func:`submit_pipeline`) runs three times: in a sync
``@flow`` that blocks on ``future.result()``, and in an async ``@flow`` that
does ``await future``, run with ``anyio.run`` on asyncio and then on trio (the
trio run is skipped, with a note, when trio is not installed).

Every run is recorded by task hooks (``on_running``, ``on_completion``,
``on_failure``), which receive the run's context (``task_run_name``,
``attempt``, ``tags``) and its state; the flows also note each future's final
``future.state``. The summary is a table of those records and one closing
line. The exit status is 0 when everything behaved as designed (the one failed
download is expected), 1 otherwise, with the reasons printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from taskrun import (
    State,
    Task,
    TaskFuture,
    allow_failure,
    flow,
    get_run_context,
    get_run_logger,
    tags,
    task,
)
from taskrun.context import TaskRunContext

MIRROR_FILES = ("core-1.4.tar.gz", "docs-1.4.zip", "tools-1.4.whl")
LEGACY_FILES = ("README.txt", "CHANGES.txt", "gone.tar.gz")
GONE = "gone.tar.gz"  # the one file the legacy mirror no longer has

# ---------------------------------------------------------------------- run records


@dataclasses.dataclass
class RunRecord:
    """What the demo remembers about one task run."""

    flow: str
    name: str
    tags: frozenset[str]
    started: float
    state: str = "Running"
    attempts: int = 0
    ended: float | None = None
    future_state: str | None = None  # the state's name as the future reported it

    @property
    def duration_ms(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started) * 1000


class RunBook:
    """Collects a :class:`RunRecord` per run, from task hooks (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: dict[Any, RunRecord] = {}

    @staticmethod
    def _flow_of(tag_set: Iterable[str]) -> str:
        # Each flow tags its runs "flow:<name>" (see the flows below).
        return next((t.split(":", 1)[1] for t in tag_set if t.startswith("flow:")), "?")

    def started(self, task: Task[Any, Any], run: TaskRunContext, state: State[Any]) -> None:
        record = RunRecord(self._flow_of(run.tags), run.task_run_name, run.tags,
                           started=state.timestamp.timestamp())
        with self._lock:
            self.records[run.task_run_id] = record

    def finished(self, task: Task[Any, Any], run: TaskRunContext, state: State[Any]) -> None:
        with self._lock:
            record = self.records[run.task_run_id]
            record.state = state.name
            record.attempts = run.attempt
            record.ended = state.timestamp.timestamp()

    def saw_futures(self, futures: Iterable[TaskFuture[Any]]) -> None:
        """Note the final state of each future, to compare with what the hooks saw."""
        with self._lock:
            for future in futures:
                record = self.records.get(future.task_run_id)
                if record is not None:
                    record.future_state = future.state.name


BOOK = RunBook()
HOOKS: dict[str, Any] = {
    "on_running": [BOOK.started],
    "on_completion": [BOOK.finished],
    "on_failure": [BOOK.finished],
}

# ---------------------------------------------------------------------- tasks


@dataclasses.dataclass(frozen=True)
class Blob:
    """A downloaded file."""

    name: str
    data: bytes


def latency(name: str) -> float:
    """A made-up download time, 20-80 ms, always the same for the same file."""
    return 0.020 + (zlib.crc32(name.encode()) % 61) / 1000


def fake_content(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest() * (1 + len(name) % 4)


@task(task_run_name="download-{name}", tags=["io"], **HOOKS)
async def download(name: str) -> Blob:
    """Fetch one file from the main mirror (an async task)."""
    await anyio.sleep(latency(name))
    return Blob(name, fake_content(name))


@task(task_run_name="legacy-{name}", tags=["io"], **HOOKS)
def download_legacy(name: str) -> Blob:
    """Fetch one file from the old mirror (a sync task, on a worker thread)."""
    time.sleep(latency(name))
    if name == GONE:
        raise FileNotFoundError(f"legacy mirror: {name} not found (HTTP 404)")
    return Blob(name, fake_content(name))


@task(task_run_name="signatures", retries=2, retry_delay_seconds=0.05, **HOOKS)
async def fetch_signatures(names: list[str]) -> dict[str, str]:
    """Fetch a signature per file; the first attempt always hits a connection reset."""
    run = get_run_context()
    assert run is not None  # always set inside a task run
    await anyio.sleep(0.02)
    if run.attempt == 1:
        get_run_logger().warning("attempt %d: key server reset the connection; retrying", run.attempt)
        raise ConnectionResetError("key server reset the connection")
    return {name: hashlib.sha256(b"sig:" + name.encode()).hexdigest()[:16] for name in names}


@task(task_run_name="prepare-output", **HOOKS)
def prepare_output() -> str:
    """Pretend to create the output folder."""
    time.sleep(0.02)
    return "out/"


@task(task_run_name="build-index", **HOOKS)
def build_index(mirror: list[Blob], legacy: list[Blob | BaseException],
                signatures: dict[str, str]) -> dict[str, Any]:
    """The fan-in: one entry per file; a legacy download that failed arrives as its exception."""
    files = {}
    missing = []
    for item in [*mirror, *legacy]:
        if isinstance(item, BaseException):
            missing.append(f"{type(item).__name__}: {item}")
            continue
        files[item.name] = {"size": len(item.data), "signature": signatures[item.name]}
    get_run_logger().info("indexed %d files, %d missing", len(files), len(missing))
    return {"files": files, "missing": missing}


@task(task_run_name="publish", **HOOKS)
async def publish(index: dict[str, Any]) -> dict[str, Any]:
    """Write the index (pretend); runs only after prepare_output, through wait_for."""
    await anyio.sleep(0.02)
    digest = hashlib.sha256(repr(sorted(index["files"].items())).encode()).hexdigest()[:12]
    return {"path": f"out/index-{digest}.json", "files": len(index["files"]), "missing": index["missing"]}


# ---------------------------------------------------------------------- flows


def submit_pipeline() -> tuple[TaskFuture[dict[str, Any]], list[TaskFuture[Any]]]:
    """Submit every run of the pipeline to the current runner.

    Returns the future of the last run, and all the futures (to check their states).
    Only submission happens here, so sync and async flows share it.
    """
    with tags("download"):
        mirror = download.map(MIRROR_FILES)
        legacy = download_legacy.map(LEGACY_FILES)
    signatures = fetch_signatures.submit([*MIRROR_FILES, *LEGACY_FILES])
    prepared = prepare_output.submit()
    # Futures as arguments are resolved at run time; type checkers see values (docs/porting.md).
    index = build_index.submit(mirror, allow_failure(legacy), signatures)  # type: ignore[call-overload]
    published = publish.submit(index, wait_for=[prepared])
    return published, [*mirror, *legacy, signatures, prepared, index, published]


@flow(name="mirror-index-sync")
def sync_pipeline() -> dict[str, Any]:
    """The pipeline from sync code: block on the result."""
    with tags("flow:sync"):
        published, futures = submit_pipeline()
    result = published.result()
    BOOK.saw_futures(futures)  # all final: publish ran after every other run
    return result


@flow(name="mirror-index-async")
async def async_pipeline(world: str) -> dict[str, Any]:
    """The pipeline from async code (asyncio or trio): await the result."""
    with tags(f"flow:{world}"):
        published, futures = submit_pipeline()
    result = await published
    BOOK.saw_futures(futures)
    return result


# ---------------------------------------------------------------------- checks and summary


def expected_run(name: str) -> tuple[str, int]:
    """(state name, attempts) that run ``name`` should end with."""
    if name == f"legacy-{GONE}":
        return "Failed", 1
    if name == "signatures":
        return "Completed", 2
    return "Completed", 1


EXPECTED_NAMES = {
    *(f"download-{n}" for n in MIRROR_FILES),
    *(f"legacy-{n}" for n in LEGACY_FILES),
    "signatures", "prepare-output", "build-index", "publish",
}


def check_flow(world: str, records: list[RunRecord], result: dict[str, Any] | None) -> list[str]:
    """Everything that should hold for one flow's runs (and its result, if it returned one)."""
    problems = []
    by_name = {r.name: r for r in records}
    missing, extra = EXPECTED_NAMES - set(by_name), set(by_name) - EXPECTED_NAMES
    if missing:
        problems.append(f"no record of run(s) {sorted(missing)}")
    if extra or len(records) != len(by_name):
        problems.append(f"unexpected runs: {sorted(r.name for r in records)}")
    for record in records:
        state, attempts = expected_run(record.name)
        if (record.state, record.attempts) != (state, attempts):
            problems.append(f"{record.name} ended {record.state} after {record.attempts} attempt(s), "
                            f"expected {state} after {attempts}")
        if result is not None and record.future_state != record.state:
            problems.append(f"{record.name}: the hooks saw {record.state}, the future {record.future_state}")
        is_download = record.name.startswith(("download-", "legacy-"))
        if is_download != ("download" in record.tags):
            problems.append(f"{record.name}: tags {sorted(record.tags)}")
    prepare, publish_run = by_name.get("prepare-output"), by_name.get("publish")
    if prepare and publish_run and (prepare.ended is None or publish_run.started < prepare.ended):
        problems.append("publish started before prepare-output finished (wait_for was ignored)")
    if result is None:
        return [f"[{world}] {p}" for p in problems]
    if result.get("files") != len(MIRROR_FILES) + len(LEGACY_FILES) - 1:
        problems.append(f"index has {result.get('files')} files, expected {len(MIRROR_FILES) + 2}")
    lost = result.get("missing", [])
    if len(lost) != 1 or GONE not in lost[0] or not lost[0].startswith("FileNotFoundError"):
        problems.append(f"index lists missing files {lost}, expected only {GONE} (FileNotFoundError)")
    return [f"[{world}] {p}" for p in problems]


def format_table(records: list[RunRecord]) -> str:
    header = ("flow", "task run", "state", "attempts", "ms")
    rows = [(r.flow, r.name, r.state, str(r.attempts),
             "-" if r.duration_ms is None else f"{r.duration_ms:.0f}") for r in records]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {3, 4}  # numbers are right-aligned

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.rjust(width) if i in right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def main() -> int:
    """Run the pipeline in each world, print the summary; 0 if all went as designed."""
    BOOK.records.clear()
    worlds: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("sync", sync_pipeline),
        ("asyncio", lambda: anyio.run(async_pipeline, "asyncio", backend="asyncio")),
    ]
    notes = []
    if importlib.util.find_spec("trio") is not None:
        worlds.append(("trio", lambda: anyio.run(async_pipeline, "trio", backend="trio")))
    else:
        notes.append("note: trio is not installed; the trio run was skipped (pip install trio)")

    problems: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for world, run_flow in worlds:
        try:
            results[world] = run_flow()
        except Exception as exc:  # a flow that raises is a demo failure, not a crash
            problems.append(f"[{world}] the flow raised {type(exc).__name__}: {exc}")
    total = time.perf_counter() - t0

    order = {world: i for i, (world, _) in enumerate(worlds)}
    records = sorted(BOOK.records.values(), key=lambda r: (order.get(r.flow, len(order)), r.started))
    for world in order:
        problems += check_flow(world, [r for r in records if r.flow == world], results.get(world))
    if len({repr(sorted(r.items())) for r in results.values()}) > 1:
        problems.append("the flows returned different results: " + "; ".join(
            f"{w}={r}" for w, r in results.items()))

    print(format_table(records))
    print()
    for note in notes:
        print(note)
    if results:
        first = next(iter(results.values()))
        print(f"published {first['path']}: {first['files']} files, missing: {', '.join(first['missing'])}")
    completed = sum(r.state == "Completed" for r in records)
    failed = sum(r.state == "Failed" for r in records)
    retried = sum(r.attempts > 1 for r in records)
    tolerated = " (tolerated)" if not problems else ""
    print(f"demo: {len(records)} runs, {completed} completed, {failed} failed{tolerated}, "
          f"{retried} retried; total {total:.2f} s")
    if problems:
        print("demo: FAILED, not everything behaved as designed:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
