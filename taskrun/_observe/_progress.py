"""Progress display fed by run events: rich live bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TextIO

import anyio.to_thread

from . import _events
from ._events import Event

PROGRESS_ENV = "TASKRUN_PROGRESS"
INTERVAL_ENV = "TASKRUN_PROGRESS_INTERVAL"
PLAIN_INTERVAL = 5.0
_TRUE = {"1", "true", "yes", "on"}
_FAILED = {"FAILED", "CRASHED"}


def progress_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``TASKRUN_PROGRESS`` asks for progress (``1``, ``true``, ``yes``, ``on``)."""
    env = os.environ if environ is None else environ
    return env.get(PROGRESS_ENV, "").strip().lower() in _TRUE


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds / 3600:.1f} h"


class TaskProgress:
    """Counts for one task's runs, as the display shows them."""

    __slots__ = ("cancelled", "done", "failed", "first", "last", "name", "running", "seen", "total")

    def __init__(self, name: str, total: int | None) -> None:
        self.name = name
        self.total = total
        self.seen: set[Any] = set()
        self.running: set[Any] = set()
        self.done = 0
        self.failed = 0
        self.cancelled = 0
        self.first: float | None = None
        self.last: float | None = None

    @property
    def finished(self) -> int:
        """Runs in a final state."""
        return self.done + self.failed + self.cancelled

    @property
    def expected(self) -> int:
        """The total if known, else the runs seen so far."""
        return max(self.total or 0, len(self.seen), self.finished)

    def rate(self, now: float) -> float | None:
        """Finished runs per second since the first event of this task."""
        if self.first is None or not self.finished:
            return None
        elapsed = max(now - self.first, 1e-6)
        return self.finished / elapsed

    def eta(self, now: float) -> float | None:
        """Seconds until all expected runs are finished, at the current rate."""
        rate = self.rate(now)
        remaining = self.expected - self.finished
        if remaining <= 0:
            return 0.0
        return remaining / rate if rate else None

    def line(self, now: float) -> str:
        """``fetch 120/1000 done, 2 failed, 8 running, 35.1/s, ETA 25 s``."""
        rate = self.rate(now)
        text = (f"{self.name} {self.done}/{self.expected} done, {self.failed} failed, "
                f"{len(self.running)} running")
        if self.cancelled:
            text += f", {self.cancelled} cancelled"
        text += f", {rate:.1f}/s" if rate is not None else ", -/s"
        return text + f", ETA {_fmt_eta(self.eta(now))}"


class Progress:
    """Show the progress of task runs while the ``with`` block runs.

    On a terminal with the ``progress`` extra (rich) installed: a live display with a
    bar per task — done, failed, running, rate, ETA. Otherwise (CI logs, pipes,
    notebooks): one plain line every ``interval`` seconds (``TASKRUN_PROGRESS_INTERVAL``,
    default 5) and a last one at the end. Silent when disabled; ``enabled=None`` reads
    ``TASKRUN_PROGRESS=1``.

    ``total_by_task`` gives the number of runs to expect per task name (for the bar and
    the ETA); without it the total grows as runs are seen. :meth:`add_total` adds more.

    By default every run in the process is counted. ``runs`` limits that to the run
    objects given (``id()`` of each, as :meth:`watch` adds), ``flow_run_id`` to the runs
    of one flow run, and ``tasks`` to runs of those task names. With
    ``finish_when_done=True`` the display ends by itself once every expected run is
    final; :meth:`close_later` ends it without waiting (from a loop thread, say).

    Example::

        with Progress({"fetch": 1000}, enabled=True):
            fetch.map(range(1000)).wait()
    """

    def __init__(self, total_by_task: Mapping[str, int] | None = None, enabled: bool | None = None, *,
                 stream: TextIO | None = None, interval: float | None = None,
                 live: bool | None = None, runs: set[int] | None = None,
                 flow_run_id: Any = None, tasks: set[str] | None = None,
                 finish_when_done: bool = False) -> None:
        totals = dict(total_by_task or {})
        for name, total in totals.items():
            if not isinstance(total, int) or isinstance(total, bool) or total < 0:
                raise ValueError(f"total_by_task[{name!r}] must be an int >= 0, got {total!r}")
        if interval is None:
            raw = os.environ.get(INTERVAL_ENV, "").strip()
            try:
                interval = float(raw) if raw else PLAIN_INTERVAL
            except ValueError:
                raise ValueError(f"{INTERVAL_ENV} must be a number of seconds, got {raw!r}") from None
        if not interval > 0:
            raise ValueError(f"interval must be a number of seconds > 0, got {interval!r}")
        self.enabled = progress_from_env() if enabled is None else bool(enabled)
        self.interval = float(interval)
        self._stream = stream
        self._live_wanted = live
        self._totals = totals
        self.tasks: dict[str, TaskProgress] = {
            name: TaskProgress(name, total) for name, total in totals.items()
        }
        self._lock = threading.Lock()
        self._subscription: _events.Subscription | None = None
        self._live: Any = None
        self._bars: dict[str, Any] = {}
        self._last_print = 0.0
        self.mode: str = "off"
        self._runs = runs
        self._flow_run_id = flow_run_id
        self._flow_runs: set[int] = set()
        self._task_names = tasks
        self._finish_when_done = finish_when_done
        self._closing = False
        self._ended = False
        self._final_keys: set[Any] = set()

    # ---------------------------------------------------------------- lifecycle
    def _choose_mode(self, stream: TextIO) -> str:
        if self._live_wanted is False:
            return "plain"
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        if not tty and not self._live_wanted:
            return "plain"
        try:
            import rich.progress  # noqa: F401, PLC0415 - the progress extra is optional
        except ImportError:
            if self._live_wanted:
                raise ImportError(
                    "Progress(live=True) needs rich: pip install 'taskrun[progress]'"
                ) from None
            return "plain"
        return "live"

    def start(self) -> Progress:
        """Start showing progress (a no-op when disabled)."""
        if not self.enabled:
            return self
        if self._subscription is not None:
            raise RuntimeError("this Progress is already showing; leave its with block first")
        stream = self._stream if self._stream is not None else sys.stdout
        self.mode = self._choose_mode(stream)
        if self.mode == "live":
            self._start_live(stream)
        self._last_print = time.monotonic()
        self._subscription = _events.subscribe(self._on_batch, batched=True, ticks=True)
        return self

    def close(self) -> None:
        """Deliver pending events, show the final counts and stop; idempotent."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        subscription.unsubscribe()
        self._end()

    def close_later(self) -> None:
        """Show the final counts and stop on the next delivery, without waiting for it."""
        self._closing = True

    def _end(self) -> None:
        with self._lock:
            if self._ended or self.mode == "off":
                return
            self._ended = True
            if self.mode == "live":
                self._refresh_live(time.monotonic())
                self._live.stop()
                self._live = None
            elif self.tasks:
                self._print_line(time.monotonic())

    def watch(self, run: object) -> None:
        """Count the run object ``run`` too (with ``runs=``: before its first event)."""
        if self._runs is not None:
            self._runs.add(id(run))

    def seed(self, task_name: str, key: Any, state: Any) -> None:
        """Count a run that is already final (``key`` as in events: its ``task_run_id``)."""
        with self._lock:
            stats = self._stats(task_name)
            stats.seen.add(key)
            if key not in self._final_keys:
                self._final_keys.add(key)
                self._count_final(stats, state)

    def _stats(self, name: str) -> TaskProgress:
        stats = self.tasks.get(name)
        if stats is None:
            stats = self.tasks[name] = TaskProgress(name, self._totals.get(name))
        return stats

    @staticmethod
    def _count_final(stats: TaskProgress, state: Any) -> None:
        kind = state.type.value
        if kind == "COMPLETED":
            stats.done += 1
        elif kind in _FAILED:
            stats.failed += 1
        else:
            stats.cancelled += 1

    def _accepts(self, event: Event) -> bool:
        run = event.run
        assert run is not None
        if self._task_names is not None and str(getattr(run.task, "name", "?")) not in self._task_names:
            return False
        if self._runs is not None and id(run) not in self._runs:
            return False
        if self._flow_run_id is not None:
            # Remote runs finish on a collector thread, outside the flow's context:
            # a run is the flow's once any of its events was.
            if event.flow is not None and event.flow.flow_run_id == self._flow_run_id:
                self._flow_runs.add(id(run))
            elif id(run) not in self._flow_runs:
                return False
            if event.kind == "finished":
                self._flow_runs.discard(id(run))
        return True

    def _all_done(self) -> bool:
        return bool(self.tasks) and all(
            t.total is not None and t.finished >= t.total for t in self.tasks.values())

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Progress:
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await anyio.to_thread.run_sync(self.close)

    def add_total(self, task_name: str, count: int) -> None:
        """Expect ``count`` more runs of ``task_name`` (a ``map`` knows its size up front)."""
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be an int >= 0, got {count!r}")
        with self._lock:
            stats = self.tasks.get(task_name)
            if stats is None:
                stats = self.tasks[task_name] = TaskProgress(task_name, 0)
            stats.total = (stats.total or 0) + count

    # ---------------------------------------------------------------- events
    def _on_batch(self, batch: Sequence[Event]) -> None:
        with self._lock:
            for event in batch:
                run = event.run
                if run is None or not self._accepts(event):
                    continue
                stats = self._stats(str(getattr(run.task, "name", "?")))
                key = run.task_run_id
                stats.seen.add(key)
                if stats.first is None:
                    stats.first = event.monotonic
                stats.last = event.monotonic
                state = event.state
                if event.kind == "finished" and state is not None:
                    stats.running.discard(key)
                    if key not in self._final_keys:
                        self._final_keys.add(key)
                        self._count_final(stats, state)
                elif state is not None:
                    if state.type.value == "RUNNING":
                        stats.running.add(key)
                    else:
                        stats.running.discard(key)
            now = time.monotonic()
            ending = self._closing or (self._finish_when_done and self._all_done())
            if not ending:
                if self.mode == "live":
                    self._refresh_live(now)
                elif self.tasks and now - self._last_print >= self.interval:
                    self._print_line(now)
        if ending:
            self._finish_here()

    def _finish_here(self) -> None:
        """(delivery thread) Final counts, then unsubscribe without waiting for ourselves."""
        subscription, self._subscription = self._subscription, None
        self._end()
        if subscription is not None:
            subscription.unsubscribe()

    # ---------------------------------------------------------------- plain
    def line(self, now: float | None = None) -> str:
        """The plain progress line: ``taskrun: fetch 120/1000 done, ...; parse ...``."""
        at = time.monotonic() if now is None else now
        return "taskrun: " + "; ".join(t.line(at) for t in self.tasks.values())

    def _print_line(self, now: float) -> None:
        self._last_print = now
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write(self.line(now) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # the stream was closed under us: progress is best effort

    # ---------------------------------------------------------------- live
    def _start_live(self, stream: TextIO) -> None:
        from rich.console import Console  # noqa: PLC0415 - the progress extra is optional
        from rich.progress import BarColumn, TextColumn  # noqa: PLC0415 - the progress extra is optional
        from rich.progress import Progress as RichProgress  # noqa: PLC0415 - the progress extra is optional

        console = Console(file=stream)
        self._live = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done]}/{task.fields[expected]} done"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("[blue]{task.fields[running]} running"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            refresh_per_second=8,
        )
        self._live.start()
        self._refresh_live(time.monotonic())

    def _refresh_live(self, now: float) -> None:
        live = self._live
        for name, stats in self.tasks.items():
            rate = stats.rate(now)
            fields = {
                "done": stats.done,
                "expected": stats.expected,
                "failed": stats.failed,
                "running": len(stats.running),
                "rate": f"{rate:.1f}/s" if rate is not None else "-/s",
                "eta": _fmt_eta(stats.eta(now)),
            }
            bar = self._bars.get(name)
            if bar is None:
                bar = self._bars[name] = live.add_task(name, total=max(stats.expected, 1), **fields)
            live.update(bar, completed=stats.finished, total=max(stats.expected, 1), **fields)
