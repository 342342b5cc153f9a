"""The engine's one observability hook: emitters, a lock-free buffer, batched delivery.

The engine calls the ``emit_*`` functions. With nobody subscribed they return after
one global check (callers on a hot path test ``_events.ACTIVE`` first and skip the
call). With subscribers, an emitter appends one tuple to a ``deque`` (atomic, no lock)
and returns; a single background thread, ``taskrun-events``, drains the buffer every
``DELIVERY_INTERVAL`` seconds and hands the events to the callbacks in batches. So
callbacks never run under an engine lock, never on the thread that emitted, and a
slow or raising callback never slows or breaks a run.
"""

from __future__ import annotations

import atexit
import collections
import contextvars
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol

from .._ids import new_uuid
from ..states import State

logger = logging.getLogger("taskrun.events")

EventKind = Literal["submitted", "state", "placed", "finished", "flow_started", "flow_finished"]
DELIVERY_INTERVAL = 0.05
_BATCH_MAX = 5000
_NS = 1_000_000_000
_SUBMITTED_RUNS = "submitted runs"  # a buffer entry's kind: many runs, one submission

# --------------------------------------------------------------------------- views


class TaskView(Protocol):
    """What events read from a task: its name."""

    @property
    def name(self) -> str: ...


class RunView(Protocol):
    """What events read from a task run (the engine's ``TaskRunContext`` fits).

    Read lazily, on the delivery thread. Optional extras, read with ``getattr``:
    ``dependencies`` (parameter name -> set of upstream run ids).
    """

    @property
    def task_run_id(self) -> uuid.UUID: ...
    @property
    def task(self) -> TaskView: ...
    @property
    def task_run_name(self) -> str: ...
    @property
    def parameters(self) -> dict[str, Any]: ...
    @property
    def attempt(self) -> int: ...
    @property
    def tags(self) -> frozenset[str]: ...


class FlowRunView(Protocol):
    """What events read from a flow run (the engine's ``FlowRunContext`` fits)."""

    @property
    def flow_run_id(self) -> uuid.UUID: ...
    @property
    def flow_run_name(self) -> str: ...
    @property
    def flow_name(self) -> str: ...
    @property
    def parameters(self) -> dict[str, Any]: ...


class FlowRunInfo:
    """A plain :class:`FlowRunView`, for code that has no flow-run object of its own.

    Example::

        info = FlowRunInfo("nightly", parameters={"day": 3})
        token = emit_flow_started(info)
        emit_flow_finished(info, Completed(), token)
    """

    __slots__ = ("flow_name", "flow_run_id", "flow_run_name", "parameters")

    def __init__(self, name: str, flow_run_name: str | None = None,
                 parameters: dict[str, Any] | None = None, flow_run_id: uuid.UUID | None = None) -> None:
        self.flow_name = name
        self.flow_run_id = flow_run_id if flow_run_id is not None else new_uuid()
        self.flow_run_name = flow_run_name or f"{name}-{self.flow_run_id.hex[:8]}"
        self.parameters = parameters if parameters is not None else {}

    def __repr__(self) -> str:
        return f"FlowRunInfo({self.flow_name!r}, {self.flow_run_name!r})"


# --------------------------------------------------------------------------- events


class Event(NamedTuple):
    """One thing that happened to a run or a flow, as delivered to subscribers.

    ``kind`` is ``"submitted"``, ``"state"`` (a non-final state), ``"placed"`` (the run's
    body went to the remote ``worker``; ``state`` is None), ``"finished"`` (the final
    state), ``"flow_started"`` or ``"flow_finished"``. ``run`` is set for task events,
    ``flow`` for flow events and for task runs submitted inside a flow.
    ``monotonic``/``wall`` say when (``time.monotonic()`` / ``time.time()`` seconds);
    ``thread``/``pid`` where it was emitted; ``worker`` names a remote worker if any.

    Example::

        def show(event: Event) -> None:
            if event.kind == "finished":
                print(event.run.task_run_name, event.state.name)
    """

    kind: EventKind
    run: RunView | None
    flow: FlowRunView | None
    state: State[Any] | None
    monotonic: float
    wall: float
    thread: str
    pid: int
    worker: str | None
    cached: bool
    context: Any


RawEvent = tuple[EventKind, "RunView | None", "FlowRunView | None", "State[Any] | None", int, str,
                 "str | None", bool, Any]
"""An event as the emitters buffer it: an :class:`Event`'s fields without ``wall`` and ``pid``,
and ``monotonic`` in integer nanoseconds, ``time.monotonic_ns()``
(``kind, run, flow, state, monotonic_ns, thread, worker, cached, context``)."""

Callback = Callable[[Event], object]
BatchCallback = Callable[[Sequence[Event]], object]

# --------------------------------------------------------------------------- state

ACTIVE: bool = False
"""True while anyone is subscribed. Hot paths test it before calling an emitter."""

_buffer: collections.deque[Any] = collections.deque()
_append = _buffer.append
_mono = time.monotonic_ns  # integers in the buffer: written as decimals, with no float to format
_thread = threading.current_thread
_wall_offset_ns = time.time_ns() - time.monotonic_ns()
_wall_offset = _wall_offset_ns / 1e9
_pid = os.getpid()
_current_flow: contextvars.ContextVar[FlowRunView | None] = contextvars.ContextVar(
    "taskrun_current_flow_run", default=None
)
_subscribers: tuple[Subscription, ...] = ()
_lock = threading.Lock()
_deliverer: _Deliverer | None = None

# Run classes -> whether their runs are a worker's copies (``_remote_copy``, a class attribute).
_remote_classes: dict[type, bool] = {}

# Set by the tracing subscriber: captures the caller's trace context at submission.
_context_capture: Callable[[], Any] | None = None


class FlowHook(Protocol):
    """Synchronous flow-start/finish listener (tracing uses it to make a flow's span current)."""

    def flow_started(self, flow: FlowRunView) -> Any: ...
    def flow_finished(self, flow: FlowRunView, state: State[Any] | None, handle: Any) -> None: ...


_flow_hooks: tuple[FlowHook, ...] = ()


def _after_fork() -> None:
    global _pid, _deliverer, _subscribers, ACTIVE
    _pid = os.getpid()
    _deliverer = None
    _subscribers = ()
    ACTIVE = False
    _buffer.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

# --------------------------------------------------------------------------- emitters


def emit_submitted(run: RunView) -> None:
    """(engine) ``run`` was submitted. Call it on the submitting thread, in the submitter's context.

    Example::

        if _events.ACTIVE:
            _events.emit_submitted(run)
    """
    if ACTIVE:
        capture = _context_capture
        _append(("submitted", run, _current_flow.get(), None, _mono(), _thread().name, None, False,
                 capture() if capture is not None else None))


def emit_submitted_runs(runs: Sequence[RunView]) -> None:
    """(engine) :func:`emit_submitted` for each of ``runs``, submitted together: one entry
    in the buffer, one clock reading, expanded to an event per run on delivery.

    Example::

        if _events.ACTIVE:
            _events.emit_submitted_runs(runs)
    """
    if ACTIVE and runs:
        capture = _context_capture
        _append((_SUBMITTED_RUNS, tuple(runs), _current_flow.get(), None, _mono(), _thread().name, None,
                 False, capture() if capture is not None else None))


def emit_state(run: RunView, state: State[Any], *, worker: str | None = None,
               at: float | None = None) -> None:
    """(engine) ``run`` entered the non-final ``state``; ``worker`` names a remote worker,
    ``at`` is when it happened there (``time.time()`` seconds) if not now.

    Example::

        if _events.ACTIVE:
            _events.emit_state(run, Running())
    """
    if ACTIVE:
        mono = _mono() if at is None else max(round(at * 1e9) - _wall_offset_ns, 0)
        _append(("state", run, _current_flow.get(), state, mono, _thread().name, worker, False, None))


def emit_placed(run: RunView, worker: str | None) -> None:
    """(runner) The body of ``run`` ran (or runs) on the remote ``worker`` (``"pid 1234"``);
    ``None``: on the calling thread.

    Example::

        if _events.ACTIVE:
            _events.emit_placed(run, f"pid {pid}")
    """
    if ACTIVE:
        _append(("placed", run, _current_flow.get(), None, _mono(), _thread().name, worker, False, None))


def on_this_thread(run: RunView, fn: Callable[..., Any], running: State[Any]) -> Callable[..., Any]:
    """(engine, only while ``ACTIVE``) ``fn`` wrapped to emit, on the thread it runs on,
    ``running`` for a first attempt, else a ``placed`` note naming that thread.

    Example::

        body = _events.on_this_thread(run, task.fn, state) if _events.ACTIVE else task.fn
    """
    def body(*args: Any, **kwargs: Any) -> Any:
        if run.attempt <= 1:
            emit_state(run, running)
        else:
            emit_placed(run, None)
        return fn(*args, **kwargs)

    return body


def emit_finished(run: RunView, state: State[Any], *, cached: bool | None = None,
                  worker: str | None = None) -> None:
    """(engine) ``run`` reached its final ``state``; ``cached`` when it came from a cache
    (by default: when the state is named ``"Cached"``).

    Example::

        if _events.ACTIVE:
            _events.emit_finished(run, state)
    """
    if ACTIVE:
        if cached is None:
            cached = state.name == "Cached"
        _append(("finished", run, _current_flow.get(), state, _mono(), _thread().name, worker, cached, None))


class FlowToken:
    """What :func:`emit_flow_started` returns; give it back to :func:`emit_flow_finished`."""

    __slots__ = ("handles", "token")

    def __init__(self, token: contextvars.Token[FlowRunView | None], handles: list[tuple[FlowHook, Any]]):
        self.token = token
        self.handles = handles


def emit_flow_started(flow: FlowRunView) -> FlowToken:
    """(engine) A flow run starts in the current context; task runs submitted in it belong to it.

    Call it in the flow's own context (the thread or task that runs the flow body), and
    :func:`emit_flow_finished` in the same context when the flow ends.

    Example::

        token = emit_flow_started(info)
        try:
            value = body()
        finally:
            emit_flow_finished(info, state, token)
    """
    token = _current_flow.set(flow)
    handles: list[tuple[FlowHook, Any]] = []
    for hook in _flow_hooks:
        try:
            handles.append((hook, hook.flow_started(flow)))
        except Exception:
            logger.exception("flow hook %r failed at flow start", hook)
    if ACTIVE:
        _append(("flow_started", None, flow, None, _mono(), _thread().name, None, False, None))
    return FlowToken(token, handles)


def emit_flow_finished(flow: FlowRunView, state: State[Any] | None, token: FlowToken) -> None:
    """(engine) The flow run started with :func:`emit_flow_started` ended in ``state``."""
    if ACTIVE:
        _append(("flow_finished", None, flow, state, _mono(), _thread().name, None, False, None))
    for hook, handle in reversed(token.handles):
        try:
            hook.flow_finished(flow, state, handle)
        except Exception:
            logger.exception("flow hook %r failed at flow end", hook)
    try:
        _current_flow.reset(token.token)
    except ValueError:
        _current_flow.set(None)  # finished in another context: leave no flow behind here


def current_flow() -> FlowRunView | None:
    """The flow run of the current context, if any."""
    return _current_flow.get()


# --------------------------------------------------------------------------- subscriptions


class Subscription:
    """A subscriber. Call it (or leave its ``with`` block) to unsubscribe.

    Example::

        with subscribe(print):
            ...  # events are printed from the taskrun-events thread
    """

    __slots__ = ("_active", "batched", "callback", "raw", "ticks")

    def __init__(self, callback: Callable[[Any], object], batched: bool, ticks: bool = False,
                 raw: bool = False) -> None:
        self.callback = callback
        self.batched = batched
        self.ticks = ticks
        #: Takes the buffer's tuples (:data:`RawEvent`) in batches, not :class:`Event` objects.
        self.raw = raw
        self._active = True

    @property
    def active(self) -> bool:
        """False once unsubscribed."""
        return self._active

    def unsubscribe(self) -> None:
        """Deliver what was emitted so far, then stop delivering; idempotent.

        When the last subscriber leaves, the delivery thread is stopped and joined
        (unless this is called from a callback, on that thread: it then exits by itself).
        """
        if not self._active:
            return
        flush()
        _remove(self)

    __call__ = unsubscribe

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unsubscribe()

    def _deliver(self, batch: Sequence[Any]) -> None:
        if not self._active:
            return
        if self.batched:
            try:
                self.callback(batch)
            except Exception:
                logger.exception("event callback %r raised; it stays subscribed", self.callback)
            return
        callback = self.callback
        for event in batch:
            try:
                callback(event)
            except Exception:
                logger.exception("event callback %r raised; it stays subscribed", callback)

    def __repr__(self) -> str:
        return f"<Subscription {self.callback!r} {'active' if self._active else 'ended'}>"


def subscribe(callback: Callable[[Any], object], *, batched: bool = False,
              ticks: bool = False) -> Subscription:
    """Call ``callback(event)`` for every :class:`Event` from now on (``batched=True``:
    ``callback(list_of_events)`` once per batch; with ``ticks=True`` too, also an empty
    list every ``DELIVERY_INTERVAL`` seconds when nothing happened, for displays that
    redraw on a clock).

    Callbacks run on the ``taskrun-events`` thread, a few milliseconds after the fact,
    never under an engine lock. One that raises is logged and stays subscribed.

    Example::

        done = []
        with subscribe(lambda e: e.kind == "finished" and done.append(e.run.task_run_name)):
            my_task.map(range(10)).wait()
    """
    if not callable(callback):
        raise TypeError(f"subscribe() needs a callable taking one event, got {callback!r}")
    if ticks and not batched:
        raise ValueError("subscribe(ticks=True) needs batched=True: ticks are empty batches")
    return _add(Subscription(callback, batched, ticks))


def subscribe_raw(callback: Callable[[list[RawEvent]], object]) -> Subscription:
    """(taskrun's own subscribers) :func:`subscribe` for ``callback(batch)`` with each
    event as the buffer's plain tuple, a :data:`RawEvent`: no :class:`Event` is built
    for it, and while every subscriber is raw none is built at all.

    Example::

        with subscribe_raw(lambda batch: print(len(batch), "events")):
            my_task.map(range(10)).wait()
    """
    return _add(Subscription(callback, True, raw=True))


def _add(subscription: Subscription) -> Subscription:
    global _subscribers, ACTIVE, _deliverer
    with _lock:
        _subscribers = (*_subscribers, subscription)
        ACTIVE = True
        if _deliverer is None:
            _deliverer = _Deliverer()
            _deliverer.thread.start()
    return subscription


def _remove(subscription: Subscription) -> None:
    global _subscribers, ACTIVE, _deliverer
    with _lock:
        if not subscription._active:
            return
        subscription._active = False
        _subscribers = tuple(s for s in _subscribers if s is not subscription)
        stopping = None
        if not _subscribers:
            ACTIVE = False
            stopping, _deliverer = _deliverer, None
            if stopping is not None:
                stopping.stop = True
                stopping.wake.set()
    if stopping is not None and threading.current_thread() is not stopping.thread:
        stopping.thread.join()


def flush(timeout: float = 10.0) -> bool:
    """Wait until every event emitted before this call was delivered; False on timeout.

    Returns at once with no subscriber, or when called from a callback.

    Example::

        run_things()
        flush()
        assert recorder.records
    """
    deliverer = _deliverer
    if deliverer is None or threading.current_thread() is deliverer.thread:
        return True
    marker = threading.Event()
    _append(marker)
    deliverer.wake.set()
    return marker.wait(timeout)


# --------------------------------------------------------------------------- delivery


class _Deliverer:
    """The ``taskrun-events`` thread: drains the buffer and calls the subscribers."""

    def __init__(self) -> None:
        self.stop = False
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self.run, name="taskrun-events", daemon=True)

    def run(self) -> None:
        while not self.stop:
            self.wake.wait(DELIVERY_INTERVAL)
            self.wake.clear()
            if self.stop:
                break
            if not self.drain():
                for subscription in _subscribers:
                    if subscription.ticks:
                        subscription._deliver([])
        self.release_markers()

    def drain(self) -> bool:
        """Deliver everything buffered; False if there was nothing."""
        delivered = False
        pop = _buffer.popleft
        while _buffer:
            batch: list[RawEvent] = []
            add = batch.append
            marker: threading.Event | None = None
            while len(batch) < _BATCH_MAX:
                try:
                    item = pop()
                except IndexError:
                    break
                if item.__class__ is not tuple:
                    marker = item
                    break
                run = item[1]
                if item[0] is _SUBMITTED_RUNS:
                    _expand(item, add)
                    continue
                if run is None or _reported_here(run):
                    add(item)
            if batch:
                delivered = True
                events: list[Event] | None = None
                for subscription in _subscribers:
                    if subscription.raw:
                        subscription._deliver(batch)
                        continue
                    if events is None:  # built once, and only for a subscriber that takes them
                        events = [Event(kind, run, flow, state, ns / 1e9, (ns + _wall_offset_ns) / _NS,
                                        thread, _pid, worker, cached, context)
                                  for kind, run, flow, state, ns, thread, worker, cached, context in batch]
                    subscription._deliver(events)
            if marker is not None:
                marker.set()
        return delivered

    def release_markers(self) -> None:
        """On stop, wake anyone flushing: nobody is left to deliver to."""
        for item in list(_buffer):
            if isinstance(item, threading.Event):
                item.set()


def _expand(item: tuple[Any, ...], add: Callable[[RawEvent], object]) -> None:
    """The ``submitted`` events of one :func:`emit_submitted_runs` entry."""
    _, runs, flow, _, mono, thread, _, _, context = item
    for run in runs:
        if _reported_here(run):
            add(("submitted", run, flow, None, mono, thread, None, False, context))


def _reported_here(run: Any) -> bool:
    """False for a worker's copy of a run (the submitter reports it) and for a future
    unpickled elsewhere (it knows only its run's id and name)."""
    remote = _remote_classes.get(run.__class__)
    if remote is None:
        remote = _remote_classes[run.__class__] = bool(getattr(run, "_remote_copy", False))
    return not remote and hasattr(run, "task")


def _shutdown() -> None:
    """At interpreter exit: deliver what is buffered, then stop the thread."""
    flush(5.0)
    for subscription in _subscribers:
        _remove(subscription)


atexit.register(_shutdown)


__all__ = [
    "ACTIVE",
    "Event",
    "EventKind",
    "FlowRunInfo",
    "FlowRunView",
    "FlowToken",
    "RawEvent",
    "RunView",
    "Subscription",
    "TaskView",
    "current_flow",
    "emit_finished",
    "emit_flow_finished",
    "emit_flow_started",
    "emit_placed",
    "on_this_thread",
    "emit_state",
    "emit_submitted",
    "emit_submitted_runs",
    "flush",
    "subscribe",
    "subscribe_raw",
]
