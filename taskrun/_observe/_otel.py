"""OpenTelemetry spans from run events (extra ``otel``), and trace-context carriers.

A flow run is a span, made current in the flow's context when the flow starts (so
spans the flow body and its task bodies open join the same trace, in worker threads
too, since runs execute in copies of the submitter's context). Each task run becomes
a child span, built on the ``taskrun-events`` thread from the run's events with their
real start and end times: attributes (task, run name, state, attempts, cached), the
exception of a failed run, and a ``retry`` span event per retry.

For code running in other processes (process pool, Dask), :func:`capture_context`
puts the current trace context into a plain ``dict`` that pickles, and
:func:`activate_context` makes it current again on the other side.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from . import _events
from ._events import Event, FlowRunView
from ._records import error_line, error_of

T = TypeVar("T")
_MISSING = "OpenTelemetry tracing needs the otel extra: pip install 'taskrun[otel]'"


_available: bool | None = None


def _require() -> Any:
    try:
        from opentelemetry import trace  # noqa: PLC0415 - the otel extra is optional
    except ImportError:
        raise ImportError(_MISSING) from None
    return trace


def otel_available() -> bool:
    """True when ``opentelemetry`` (the API) can be imported (asked once per process)."""
    global _available
    if _available is None:
        try:
            import opentelemetry.trace  # noqa: F401, PLC0415 - the otel extra is optional
        except ImportError:
            _available = False
        else:
            _available = True
    return _available


def tracer_provider_configured() -> bool:
    """True when the application installed a real global tracer provider.

    Example::

        if tracer_provider_configured():
            tracing = Tracing().start()
    """
    if not otel_available():
        return False
    from opentelemetry import trace  # noqa: PLC0415 - the otel extra is optional

    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def capture_context() -> dict[str, str]:
    """The current trace context as a picklable carrier dict (``{}`` without otel).

    Example::

        carrier = capture_context()            # in the submitting process
        pool.submit(work, carrier)             # ...
        with activate_context(carrier):        # in the worker process
            do_work()
    """
    if not otel_available():
        return {}
    from opentelemetry import propagate  # noqa: PLC0415 - the otel extra is optional

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def activate_context(carrier: dict[str, str] | None) -> Iterator[None]:
    """Make the trace context in ``carrier`` current inside the block (no-op if empty).

    Example::

        with activate_context(carrier):
            with tracer.start_as_current_span("inside the worker"):
                ...
    """
    if not carrier or not otel_available():
        yield
        return
    if not isinstance(carrier, dict):
        raise TypeError(f"carrier must be the dict capture_context() returned, got {type(carrier).__name__}")
    from opentelemetry import context, propagate  # noqa: PLC0415 - the otel extra is optional

    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


def call_in_context(carrier: dict[str, str] | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with ``carrier``'s trace context current (for worker processes).

    Example::

        executor.submit(call_in_context, capture_context(), body, 1, 2)
    """
    with activate_context(carrier):
        return fn(*args, **kwargs)


def carrier_of(context: contextvars.Context) -> dict[str, str] | None:
    """(runners) The trace context of a run's ``context`` as a carrier, or None when not tracing.

    Reads a fresh copy of ``context``, so a snapshot shared by many runs is never entered.

    Example::

        carrier = carrier_of(run._context)     # shipped with the run to a worker process
    """
    if _events._context_capture is None:
        return None
    return context.copy().run(capture_context) or None


def attach_carrier(carrier: dict[str, str] | None) -> None:
    """(workers) Make ``carrier``'s trace context current in the current context, for good.

    For a context made for one run and dropped after it (a worker's run context).

    Example::

        context.run(attach_carrier, snapshot.trace)
    """
    if not carrier or not otel_available():
        return
    from opentelemetry import context, propagate  # noqa: PLC0415 - the otel extra is optional

    context.attach(propagate.extract(carrier))


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class _Pending:
    __slots__ = ("changes", "context", "flow_id", "flow_name", "started", "submitted", "thread", "worker")

    def __init__(self) -> None:
        self.submitted: float | None = None
        self.started: float | None = None
        self.thread: str | None = None
        self.worker: str | None = None
        self.context: Any = None
        self.flow_id: str | None = None
        self.flow_name: str | None = None
        self.changes: list[tuple[str, str | None, float, int]] = []


class Tracing:
    """Turn flow and task runs into OpenTelemetry spans while started.

    Uses ``tracer_provider`` or the global one. Without the ``otel`` extra,
    :meth:`start` raises an ``ImportError`` naming it.

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        provider = TracerProvider()
        with Tracing(provider):
            my_flow()
    """

    def __init__(self, tracer_provider: Any = None, *, tracer_name: str = "taskrun") -> None:
        self._provider = tracer_provider
        self._tracer_name = tracer_name
        self._tracer: Any = None
        self._subscription: _events.Subscription | None = None
        self._pending: dict[str, _Pending] = {}
        self._flows: dict[str, Any] = {}

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Tracing:
        """Install the flow hook and subscribe to events."""
        trace = _require()
        if self._subscription is not None:
            raise RuntimeError("this Tracing is already started; close() it first")
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer(self._tracer_name)
        from opentelemetry import context  # noqa: PLC0415 - the otel extra is optional

        _events._flow_hooks = (*_events._flow_hooks, self)
        _events._context_capture = context.get_current
        self._subscription = _events.subscribe(self._on_batch, batched=True)
        return self

    def close(self) -> None:
        """Deliver pending events (ending their spans), then stop; idempotent."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        _events._flow_hooks = tuple(h for h in _events._flow_hooks if h is not self)
        subscription.unsubscribe()
        if not any(isinstance(h, Tracing) for h in _events._flow_hooks):
            _events._context_capture = None
        self._pending.clear()
        self._flows.clear()

    def __enter__(self) -> Tracing:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---------------------------------------------------------------- flows (synchronous)
    def flow_started(self, flow: FlowRunView) -> Any:
        """(flow hook) Start the flow's span and make it current in the flow's context."""
        from opentelemetry import context, trace  # noqa: PLC0415 - the otel extra is optional

        span = self._tracer.start_span(
            f"flow {flow.flow_name}",
            attributes={
                "taskrun.flow.name": flow.flow_name,
                "taskrun.flow_run.name": flow.flow_run_name,
                "taskrun.flow_run.id": str(flow.flow_run_id),
            },
        )
        self._flows[str(flow.flow_run_id)] = span.get_span_context()
        token = context.attach(trace.set_span_in_context(span))
        return span, token

    def flow_finished(self, flow: FlowRunView, state: Any, handle: Any) -> None:
        """(flow hook) End the flow's span with its final state."""
        from opentelemetry import context, trace  # noqa: PLC0415 - the otel extra is optional

        span, token = handle
        if state is not None:
            span.set_attribute("taskrun.state", state.name)
            span.set_attribute("taskrun.state.type", state.type.value)
            error = error_of(state)
            if error is not None:
                span.record_exception(error)
            if state.type.value in ("FAILED", "CRASHED"):
                span.set_status(trace.Status(trace.StatusCode.ERROR, state.message or state.name))
        span.end()
        with contextlib.suppress(Exception):
            context.detach(token)

    # ---------------------------------------------------------------- tasks (delivery thread)
    def _on_batch(self, batch: Sequence[Event]) -> None:
        for event in batch:
            if event.run is None:
                if event.kind == "flow_finished" and event.flow is not None:
                    self._flows.pop(str(event.flow.flow_run_id), None)
                continue
            key = str(event.run.task_run_id)
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _Pending()
            if pending.flow_id is None and event.flow is not None:
                pending.flow_id = str(event.flow.flow_run_id)
                pending.flow_name = event.flow.flow_run_name
            if event.kind == "submitted":
                pending.submitted = event.wall
                pending.context = event.context
                continue
            if event.worker is not None:
                pending.worker = event.worker
            state = event.state
            if state is None:
                continue
            if state.type.value == "RUNNING" and pending.started is None:
                pending.started = event.wall
                pending.thread = event.thread
            if state.name in ("AwaitingRetry", "Retrying"):
                pending.changes.append((state.name, state.message, event.wall, event.run.attempt))
            if event.kind == "finished":
                del self._pending[key]
                self._finish_span(event, pending)

    def _finish_span(self, event: Event, pending: _Pending) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - the otel extra is optional

        run = event.run
        state = event.state
        assert run is not None and state is not None
        parent = None
        flow_context = self._flows.get(pending.flow_id) if pending.flow_id else None
        if flow_context is not None:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(flow_context))
        elif pending.context is not None:
            parent = pending.context
        start = pending.started or pending.submitted or event.wall
        attributes: dict[str, Any] = {
            "taskrun.task.name": str(run.task.name),
            "taskrun.task_run.name": str(run.task_run_name),
            "taskrun.task_run.id": str(run.task_run_id),
            "taskrun.state": state.name,
            "taskrun.state.type": state.type.value,
            "taskrun.attempts": int(run.attempt),
            "taskrun.cached": bool(event.cached),
            "thread.name": pending.thread or event.thread,
            "process.pid": event.pid,
        }
        if pending.flow_name is not None:
            attributes["taskrun.flow_run.name"] = pending.flow_name
        worker = event.worker or pending.worker
        if worker:
            attributes["taskrun.worker"] = worker
        span = self._tracer.start_span(f"task {run.task.name}", context=parent,
                                       start_time=_ns(start), attributes=attributes)
        for name, message, wall, attempt in pending.changes:
            if name == "AwaitingRetry":
                span.add_event("retry", {"taskrun.attempt": attempt, "message": message or ""},
                               timestamp=_ns(wall))
        error = error_of(state)
        if error is not None:
            span.record_exception(error, timestamp=_ns(event.wall))
        if state.type.value in ("FAILED", "CRASHED"):
            span.set_status(trace.Status(trace.StatusCode.ERROR,
                                         error_line(error) if error is not None else state.name))
        span.end(end_time=_ns(event.wall))


def tracing_from_env() -> Tracing | None:
    """A (not yet started) :class:`Tracing` when a tracer provider is configured, else ``None``."""
    return Tracing() if tracer_provider_configured() else None


class _FlowTracing:
    """One :class:`Tracing` on the global provider, shared by the flow runs in progress.

    The first flow run that starts while a tracer provider is configured starts it; the
    last one to end closes it, so nothing listens when no flow is running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._tracing: Tracing | None = None

    def acquire(self) -> bool:
        """Start (or join) tracing if a provider is configured; True if joined."""
        if not tracer_provider_configured():
            return False
        with self._lock:
            if self._tracing is None:
                self._tracing = Tracing().start()
            self._users += 1
        return True

    def release(self) -> None:
        """Leave; the last one out closes the shared Tracing."""
        with self._lock:
            self._users -= 1
            closing = self._tracing if self._users == 0 else None
            if closing is not None:
                self._tracing = None
        if closing is not None:
            closing.close()


flow_tracing = _FlowTracing()
