"""Results, verdicts and their three outputs: the table, the JSON file, the plot."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

OK, MISS_TARGET, MISS_MUST, INFO, NOT_AVAILABLE, ERROR = (
    "ok", "MISS target", "MISS must", "info", "n/a", "error")


@dataclass
class Result:
    """One row of the table.

    ``judge`` says which number the target applies to: ``"ratio"`` (taskrun /
    baseline, the usual case) or ``"taskrun"`` (an absolute figure, such as bytes
    per run or milliseconds of import). ``target`` and ``must`` are upper bounds;
    ``None`` means the issue sets none.
    """

    key: str
    workload: str
    taskrun: float | None = None
    baseline: float | None = None
    unit: str = ""
    ratio: float | None = None
    target: float | None = None
    must: float | None = None
    judge: str = "ratio"
    status: str | None = None  # set for n/a and error rows; otherwise derived
    notes: list[str] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # system -> {n: µs per task}

    @property
    def judged(self) -> float | None:
        return self.ratio if self.judge == "ratio" else self.taskrun

    @property
    def verdict(self) -> str:
        if self.status is not None:
            return self.status
        value = self.judged
        if self.target is None and self.must is None:
            return INFO
        if value is None:
            return ERROR
        if self.must is not None and value > self.must:
            return MISS_MUST
        if self.target is not None and value > self.target:
            return MISS_TARGET
        return OK

    def fails_check(self) -> bool:
        """True when ``--check`` must fail: a "must" bound missed or not measurable."""
        if self.must is None:
            return False
        return self.verdict in (MISS_MUST, ERROR)


def unavailable(key: str, workload: str, reason: str) -> Result:
    return Result(key, workload, status=NOT_AVAILABLE, notes=[f"not available: {reason}"])


def failed(key: str, workload: str, exc: BaseException, must: float | None = None) -> Result:
    return Result(key, workload, status=ERROR, must=must, notes=[f"error: {type(exc).__name__}: {exc}"])


# ---------------------------------------------------------------------- table


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("B/run", "ms"):
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if unit == "s" else f"{value:.2f}"
    return f"{text} {unit}".strip()


def _bound(value: float | None, r: Result) -> str:
    if value is None:
        return "-"
    if r.judge == "ratio":
        return f"<= {value:g}"
    return f"<= {fmt_value(value, r.unit)}"


HEADERS = ("workload", "taskrun", "baseline", "ratio", "target", "must", "verdict")


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in results:
        out.append((r.workload, fmt_value(r.taskrun, r.unit), fmt_value(r.baseline, r.unit),
                    "-" if r.ratio is None else f"{r.ratio:.3f}",
                    _bound(r.target, r), _bound(r.must, r), r.verdict))
    return out


def table(results: list[Result], markdown: bool = False) -> str:
    body = rows(results)
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
    else:
        widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
                  for i, h in enumerate(HEADERS)]

        def fmt(row: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

        lines = [fmt(HEADERS), "  ".join("-" * w for w in widths)] + [fmt(row) for row in body]
    notes = [f"  [{r.key}] {note}" for r in results for note in r.notes]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


# ---------------------------------------------------------------------- json


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=os.path.dirname(os.path.abspath(__file__)))
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def metadata(quick: bool) -> dict[str, Any]:
    try:
        import taskrun
        version = getattr(taskrun, "__version__", None)
    except Exception as exc:  # recorded; the rows say what broke
        version = f"import failed: {exc!r}"
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if quick else "full",
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "taskrun": version,
        "commit": _git_commit(),
    }


def save_json(path: str, results: list[Result], meta: dict[str, Any]) -> None:
    data = {"meta": meta, "results": [{**asdict(r), "verdict": r.verdict} for r in results]}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.write("\n")


# ---------------------------------------------------------------------- plot


def save_plot(path: str, results: list[Result], meta: dict[str, Any]) -> bool:
    """Per-task cost against run size (log x), one line per system measured at
    two sizes or more. Returns False (and draws nothing) when there is no curve."""
    curves: dict[str, dict[int, float]] = {}
    for r in results:
        for system, points in r.curves.items():
            curves.setdefault(system, {}).update(points)
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour, used = palette[0], 0
    for system, points in curves.items():  # each baseline follows its taskrun curve
        xs = sorted(points)
        ours = system.startswith("taskrun")
        if ours:
            colour, used = palette[used % len(palette)], used + 1
        ax.plot(xs, [points[x] for x in xs], marker="o" if ours else "s", color=colour,
                linestyle="-" if ours else "--", label=system)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("runs per map (log scale)")
    ax.set_ylabel("wall time per task (µs)")
    ax.set_title(f"taskrun vs bare executors, no-op tasks ({meta.get('cpus')} CPUs, "
                 f"Python {meta.get('python')}, {meta.get('mode')} run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
