"""Rows for the multi-process workloads, measured by ``benchmarks/workloads_parallel.py``.

That module (written separately) exposes ``bench_process_speedup(quick)`` and
``bench_dask_overhead(quick)``, each returning a dict of figures (``seconds``,
``ratio``, ``label``, ...). This adapter only turns those dicts into rows. When
the module, or the ``dask`` extra, is missing, the row says so: no figure is
ever made up here.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from .config import Config
from .report import Result, failed, unavailable


def _load() -> tuple[Any, str | None]:
    try:
        return importlib.import_module(".workloads_parallel", __package__), None
    except ImportError as exc:
        return None, f"benchmarks/workloads_parallel.py does not import ({exc})"


def _row(key: str, default_label: str, figures: dict[str, Any]) -> Result:
    if figures.get("available") is False:
        reason = str(figures.get("reason", "no reason given"))
        return unavailable(key, str(figures.get("label", default_label)), reason)
    seconds = figures.get("seconds")
    tr = bl = None
    extra = []
    if isinstance(seconds, dict):
        tr = seconds.get("taskrun")
        bl = seconds.get("baseline")
        extra = [f"{k} {v:.3g} s" for k, v in seconds.items()
                 if k not in ("taskrun", "baseline") and isinstance(v, (int, float))]
    elif isinstance(seconds, (int, float)):
        tr = float(seconds)
    tr = figures.get("taskrun_seconds", tr)
    bl = figures.get("baseline_seconds", bl)
    ratio = figures.get("ratio")
    r = Result(key, str(figures.get("label", default_label)), taskrun=tr, baseline=bl, unit="s",
               ratio=None if ratio is None else float(ratio), target=figures.get("target"),
               must=figures.get("must"), samples=dict(figures))
    if extra:
        r.notes.append("; ".join(extra))
    for note in ([figures["note"]] if "note" in figures else []) + list(figures.get("notes", [])):
        r.notes.append(str(note))
    return r


def _run(key: str, label: str, fn_name: str, cfg: Config, needs: str | None = None) -> list[Result]:
    module, why = _load()
    if module is None:
        return [unavailable(key, label, str(why))]
    fn: Callable[[bool], dict[str, Any]] | None = getattr(module, fn_name, None)
    if fn is None:
        return [unavailable(key, label, f"workloads_parallel has no {fn_name}()")]
    if needs is not None and importlib.util.find_spec(needs) is None:
        return [unavailable(key, label, "the dask extra is not installed (pip install 'taskrun[dask]')")]
    try:
        figures = fn(cfg.quick)
    except ImportError as exc:
        return [unavailable(key, label, f"{type(exc).__name__}: {exc}")]
    except Exception as exc:  # one broken workload must not stop the suite
        return [failed(key, label, exc)]
    if not isinstance(figures, dict):
        return [failed(key, label, TypeError(f"{fn_name}() returned {type(figures).__name__}, not dict"))]
    return [_row(key, label, figures)]


def bench_process(cfg: Config) -> list[Result]:
    return _run("process", "ProcessPoolTaskRunner speed-up", "bench_process_speedup", cfg)


def bench_dask(cfg: Config) -> list[Result]:
    return _run("dask", "DaskTaskRunner / client.map (same LocalCluster)", "bench_dask_overhead", cfg,
                needs="distributed")
