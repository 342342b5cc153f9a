"""A run summary: counts per task and state, slowest runs, failures, retries, cache hits."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ._records import RunRecord

_STATE_ORDER = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "RUNNING", "SCHEDULED", "PENDING")


@dataclasses.dataclass(frozen=True)
class TaskCounts:
    """Runs of one task: how many ended in each state, retried, came from cache; time spent."""

    task: str
    states: dict[str, int]
    runs: int
    retried: int
    retries: int
    cached: int
    total_seconds: float
    max_seconds: float


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


class Summary:
    """What a set of runs did, at a glance; ``str(summary)`` is a text table.

    Example::

        summary = Summary(read_records("runs.jsonl"))
        print(summary)
        assert summary.counts()["fetch"]["COMPLETED"] == 100
    """

    def __init__(self, records: Iterable[RunRecord], *, slowest: int = 5) -> None:
        self.records = list(records)
        if not isinstance(slowest, int) or slowest < 0:
            raise ValueError(f"slowest must be an int >= 0, got {slowest!r}")
        self._slowest = slowest
        by_task: dict[str, list[RunRecord]] = {}
        for record in self.records:
            by_task.setdefault(record.task_name, []).append(record)
        self.tasks: list[TaskCounts] = []
        for name, runs in by_task.items():
            durations = [d for d in (r.duration for r in runs) if d is not None]
            self.tasks.append(TaskCounts(
                task=name,
                states=dict(Counter(r.state_type for r in runs)),
                runs=len(runs),
                retried=sum(1 for r in runs if r.retries),
                retries=sum(r.retries for r in runs),
                cached=sum(1 for r in runs if r.cached),
                total_seconds=sum(durations),
                max_seconds=max(durations, default=0.0),
            ))

    # ---------------------------------------------------------------- queries
    @property
    def total(self) -> int:
        """How many runs."""
        return len(self.records)

    @property
    def wall_seconds(self) -> float:
        """From the first state change of any run to the last (0 with no runs)."""
        starts = [r.states[0].monotonic for r in self.records if r.states]
        ends = [r.states[-1].monotonic for r in self.records if r.states]
        return max(ends) - min(starts) if starts else 0.0

    def counts(self) -> dict[str, dict[str, int]]:
        """Task name -> state type -> number of runs."""
        return {t.task: dict(t.states) for t in self.tasks}

    def state_counts(self) -> dict[str, int]:
        """State type -> number of runs, over all tasks."""
        total: Counter[str] = Counter()
        for t in self.tasks:
            total.update(t.states)
        return dict(total)

    def slowest(self, n: int | None = None) -> list[RunRecord]:
        """The ``n`` longest runs (default: as given to the constructor)."""
        timed = [r for r in self.records if r.duration is not None]
        timed.sort(key=lambda r: r.duration or 0.0, reverse=True)
        return timed[: self._slowest if n is None else n]

    def failures(self) -> list[RunRecord]:
        """Runs that ended failed or crashed."""
        return [r for r in self.records if r.state_type in ("FAILED", "CRASHED")]

    def retried(self) -> list[RunRecord]:
        """Runs that were retried at least once."""
        return [r for r in self.records if r.retries]

    def cached(self) -> list[RunRecord]:
        """Runs whose result came from the cache."""
        return [r for r in self.records if r.cached]

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data."""
        return {
            "total": self.total,
            "wall_seconds": self.wall_seconds,
            "tasks": [dataclasses.asdict(t) for t in self.tasks],
            "slowest": [(r.task_run_name, r.duration) for r in self.slowest()],
            "failures": [(r.task_run_name, r.state_name, r.message) for r in self.failures()],
            "retried": [(r.task_run_name, r.retries) for r in self.retried()],
            "cached": len(self.cached()),
        }

    # ---------------------------------------------------------------- text
    def __str__(self) -> str:
        states = [s for s in _STATE_ORDER if any(s in t.states for t in self.tasks)]
        header = ["task", "runs", *[s.lower() for s in states], "retried", "cached", "total", "max"]
        rows = [header]
        for t in self.tasks:
            rows.append([t.task, str(t.runs), *[str(t.states.get(s, 0)) for s in states], str(t.retried),
                         str(t.cached), _fmt_seconds(t.total_seconds), _fmt_seconds(t.max_seconds)])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [f"{self.total} runs in {_fmt_seconds(self.wall_seconds)}"]
        for number, row in enumerate(rows):
            cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
            lines.append("  ".join(cells).rstrip())
            if number == 0:
                lines.append("  ".join("-" * w for w in widths))
        slowest = self.slowest()
        if slowest:
            lines.append("")
            lines.append("slowest:")
            lines.extend(f"  {_fmt_seconds(r.duration):>10}  {r.task_run_name}" for r in slowest)
        failures = self.failures()
        if failures:
            lines.append("")
            lines.append(f"failures ({len(failures)}):")
            lines.extend(f"  {r.task_run_name} [{r.state_name}] {r.message or ''}".rstrip() for r in failures)
        retried = self.retried()
        if retried:
            lines.append("")
            lines.append(f"retried ({len(retried)}):")
            lines.extend(f"  {r.task_run_name}: {r.retries} retr{'y' if r.retries == 1 else 'ies'}, "
                         f"{r.attempts} attempts, {r.state_name}" for r in retried[:10])
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Summary {self.total} runs, {len(self.failures())} failed>"
