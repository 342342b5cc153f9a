"""Direct calls (``task(x)``): inputs resolved in the caller, and the engine run without a loop."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..exceptions import UpstreamTaskError
from ..states import State
from ._admission import all_plain, upstream_problem, value_of
from ._driver import drive
from ._executors import InlineExecutor
from ._resolve import collect_futures, replace_futures
from ._waiting import _unfinished_in, _wait_many, _wait_many_async

if TYPE_CHECKING:
    from ._record import TaskRunContext


def drive_inline(run: TaskRunContext) -> State[Any]:
    """Run a sync task's run to its end in this thread (no event loop needed)."""
    return step_to_end(drive(run, InlineExecutor()))


def step_to_end(coro: Coroutine[Any, Any, State[Any]]) -> State[Any]:
    """Run an engine coroutine that never suspends (an inline executor) to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("internal error: the inline engine tried to suspend")


def resolve_inputs_blocking(parameters: dict[str, Any]) -> dict[str, Any]:
    """Wait for futures in ``parameters`` (blocking) and replace them with values."""
    if all_plain(parameters):
        return parameters
    while pending := _unfinished_in(parameters):
        _wait_many(pending, None, stop_on_failure=False)
    return _checked_replace(parameters)


async def resolve_inputs_async(parameters: dict[str, Any]) -> dict[str, Any]:
    """Await futures in ``parameters`` and replace them with values."""
    if all_plain(parameters):
        return parameters
    while pending := _unfinished_in(parameters):
        await _wait_many_async(pending, None, stop_on_failure=False)
    return _checked_replace(parameters)


def _checked_replace(parameters: dict[str, Any]) -> dict[str, Any]:
    """Replace the (final) futures in ``parameters``; UpstreamTaskError if one may not fail."""
    problem = upstream_problem(collect_futures(parameters))
    if problem is not None:
        raise UpstreamTaskError(problem)
    return replace_futures(parameters, value_of)  # type: ignore[no-any-return]
