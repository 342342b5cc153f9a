"""Run events: subscribe to what happens to task runs and flow runs.

Progress bars, run records, reports and tracing are all built on this. A callback
gets one :class:`Event` per call (or a list with ``batched=True``), on the
``taskrun-events`` thread a few milliseconds after the fact, never under a runner's
lock, so a slow callback never slows a run. A callback that raises is logged to the
``taskrun.events`` logger and stays subscribed. With no subscriber, runs pay one
attribute check per state change.

Example::

    from taskrun import events

    def on_event(event: events.Event) -> None:
        if event.kind == "finished":
            print(event.run.task_run_name, event.state.name, event.thread)

    with events.subscribe(on_event):
        my_task.map(range(10)).wait()
    # leaving the block delivers everything emitted before it
"""

from __future__ import annotations

from ._observe._events import (
    Event,
    EventKind,
    FlowRunInfo,
    FlowRunView,
    RunView,
    Subscription,
    TaskView,
    current_flow,
    flush,
    subscribe,
)
from ._observe._progress import Progress
from ._observe._recorder import Recorder

__all__ = [
    "Event",
    "EventKind",
    "FlowRunInfo",
    "FlowRunView",
    "Progress",
    "Recorder",
    "RunView",
    "Subscription",
    "TaskView",
    "current_flow",
    "flush",
    "subscribe",
]
