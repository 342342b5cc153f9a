"""Run outcomes, visible by default: what the engine logs when a run retries or ends.

Records go to ``taskrun.task_runs`` and carry ``task_name``, ``task_run_name``,
``task_run_id``, ``flow_run_name`` and ``attempt`` as ``extra`` fields.

==============  =======  ==========================================================
outcome         level    message
==============  =======  ==========================================================
retry           WARNING  ``retry 1/2 in 0.1 s after ValueError: bad input``
Completed       DEBUG    ``Completed``
Failed          ERROR    ``Failed: ValueError: bad input`` (+ traceback)
TimedOut        ERROR    ``timed out: task run 'x' timed out after 1 s``
Crashed         ERROR    ``crashed: ...`` (+ the cause's traceback)
Cancelled       INFO     ``Cancelled: the run was cancelled``
NotReady        INFO     ``did not start: upstream run 'y' ended Failed``
==============  =======  ==========================================================

Example::

    log_retry(run, state, attempt=1, retries=2, delay=0.1)
    log_final(run, state)
"""

from __future__ import annotations

import logging
from typing import Any

from ..states import State, StateType, describe
from ._logging import _ensure_default_handler, current_flow_run_name

_logger = LOGGER = logging.getLogger("taskrun.task_runs")
#: The logger's own ``isEnabledFor`` answers by level (the logging module clears
#: it in place whenever a level changes): read directly on the per-run path.
LEVEL_CACHE: dict[int, bool] = LOGGER._cache  # type: ignore[attr-defined]


def _extra(run: Any) -> dict[str, Any]:
    return {
        "task_name": run.task.name,
        "task_run_name": run.task_run_name,
        "task_run_id": str(run.task_run_id),
        "flow_run_name": current_flow_run_name(),
        "attempt": run.attempt,
    }


def summary(exc: BaseException | None) -> str:
    """The one-line summary of an exception: ``Type: message``."""
    if exc is None:
        return "no exception"
    try:
        text = str(exc).strip().splitlines()
    except Exception:  # a raising __str__: the summary still names the type
        return describe(exc)
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def log_retry(run: Any, state: State[Any], attempt: int, retries: int, delay: float) -> None:
    """(engine, before sleeping between attempts) WARNING ``retry n/N in d s after <summary>``."""
    if not _logger.isEnabledFor(logging.WARNING):
        return
    _ensure_default_handler()
    reason = "timed out" if state.name == "TimedOut" else summary(state.exception())
    _logger.warning("%s - retry %d/%d in %g s after %s", run.task_run_name, attempt, retries, delay,
                    reason, extra=_extra(run))


def log_final(run: Any, state: State[Any]) -> None:
    """(engine, once per run, before its future finishes) one record for the final state."""
    kind = state.type
    if kind is StateType.COMPLETED:
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("%s - %s", run.task_run_name, state.name, extra=_extra(run))
        return
    level = logging.INFO if kind in (StateType.CANCELLED, StateType.PENDING) else logging.ERROR
    if not _logger.isEnabledFor(level):
        return
    _ensure_default_handler()
    exc = state.exception()
    exc_info: Any = None
    if state.name == "TimedOut":
        text = f"timed out: {state.message}"
    elif kind is StateType.CRASHED:
        text = f"crashed: {state.message}"
        cause = exc.__cause__ if exc is not None else None
        if cause is not None:
            exc_info = (type(cause), cause, cause.__traceback__)
    elif kind is StateType.FAILED:
        text = f"{state.name}: {summary(exc)}"
        if exc is not None:
            exc_info = (type(exc), exc, exc.__traceback__)
    elif state.name == "NotReady":
        text = f"did not start: {state.message}"
    else:
        text = f"{state.name}: {state.message}"
    _logger.log(level, "%s - %s", run.task_run_name, text, exc_info=exc_info, extra=_extra(run))


def flow_end_line(ctx: Any, state: State[Any], seconds: float) -> None:
    """(flows) one INFO line when a flow run ends: its state, its runs by state, duration."""
    logger = logging.getLogger("taskrun.flow_runs")
    if not logger.isEnabledFor(logging.INFO):
        return
    counts = ctx.counts()
    parts = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no task runs"
    ctx.logger().info("finished in state %s (%s) in %.3f s", state.name, parts, seconds,
                      extra={"flow_state": state.name, "run_counts": counts, "duration": seconds})


def log_flow_retry(ctx: Any, state: State[Any], attempt: int, retries: int, delay: float) -> None:
    """(flows) WARNING ``retry n/N in d s after <summary>`` for a flow run."""
    if logging.getLogger("taskrun.flow_runs").isEnabledFor(logging.WARNING):
        ctx.logger().warning("retry %d/%d in %g s after %s", attempt, retries, delay,
                             summary(state.exception()))


__all__ = ["log_retry", "log_final", "flow_end_line", "log_flow_retry", "summary"]
