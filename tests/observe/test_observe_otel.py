from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _fakes import make_runs, play

pytest.importorskip("opentelemetry.sdk", reason="the test extra installs opentelemetry-sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskrun._observe import _events
from taskrun._observe._events import FlowRunInfo
from taskrun._observe._otel import (
    Tracing,
    activate_context,
    call_in_context,
    capture_context,
    tracer_provider_configured,
)
from taskrun.states import Completed, Failed


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


def _run_flow(provider: TracerProvider) -> FlowRunInfo:
    flow = FlowRunInfo("nightly")
    with Tracing(provider):
        token = _events.emit_flow_started(flow)
        try:
            for j, run in enumerate(make_runs("fetch", 4)):
                play(run, fail=(j == 1), retries=1 if j == 2 else 0, cached=(j == 3))
        finally:
            _events.emit_flow_finished(flow, Failed(RuntimeError("one run failed")), token)
    return flow


def test_flow_span_is_the_parent_of_task_spans(exporter: Any) -> None:
    provider, memory = exporter
    flow = _run_flow(provider)
    spans = memory.get_finished_spans()
    (flow_span,) = [s for s in spans if s.name == "flow nightly"]
    tasks = [s for s in spans if s.name == "task fetch"]
    assert len(tasks) == 4
    for span in tasks:
        assert span.parent is not None and span.parent.span_id == flow_span.context.span_id
        assert span.context.trace_id == flow_span.context.trace_id
        assert span.start_time <= span.end_time
    assert flow_span.attributes["taskrun.flow_run.name"] == flow.flow_run_name
    assert flow_span.status.status_code is trace.StatusCode.ERROR


def test_task_span_attributes_exceptions_and_retries(exporter: Any) -> None:
    provider, memory = exporter
    _run_flow(provider)
    tasks = {s.attributes["taskrun.task_run.name"]: s for s in memory.get_finished_spans()
             if s.name == "task fetch"}
    ok, failed, retried, cached = (tasks[f"fetch-{i}"] for i in range(4))
    assert ok.attributes["taskrun.state"] == "Completed" and ok.attributes["taskrun.attempts"] == 1
    assert ok.attributes["taskrun.task.name"] == "fetch" and ok.attributes["taskrun.cached"] is False
    assert cached.attributes["taskrun.cached"] is True
    assert failed.status.status_code is trace.StatusCode.ERROR
    (exception,) = [e for e in failed.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "ValueError"
    assert "bad input fetch-1" in exception.attributes["exception.message"]
    assert [e.name for e in retried.events] == ["retry"]
    assert retried.attributes["taskrun.attempts"] == 2


def test_runs_outside_a_flow_use_the_context_of_their_submitter(exporter: Any) -> None:
    provider, memory = exporter
    tracer = provider.get_tracer("app")
    with Tracing(provider), tracer.start_as_current_span("request") as request:
        play(make_runs("t", 1)[0])
    (task,) = [s for s in memory.get_finished_spans() if s.name == "task t"]
    assert task.parent is not None and task.parent.span_id == request.get_span_context().span_id
    assert _events._context_capture is None and _events._flow_hooks == ()


def test_user_spans_in_a_worker_thread_join_the_flow_trace(exporter: Any) -> None:
    provider, memory = exporter
    tracer = provider.get_tracer("app")
    flow = FlowRunInfo("f")
    with Tracing(provider):
        token = _events.emit_flow_started(flow)
        carrier = capture_context()

        def body() -> None:
            with activate_context(carrier), tracer.start_as_current_span("inside"):
                pass

        thread = threading.Thread(target=body, name="plain-thread")   # no context copied
        thread.start()
        thread.join()
        _events.emit_flow_finished(flow, Completed(), token)
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert spans["inside"].parent is not None
    assert spans["inside"].parent.span_id == spans["flow f"].context.span_id
    assert call_in_context(carrier, lambda: 5) == 5
    assert call_in_context({}, lambda: 6) == 6


_CHILD = """
import json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from taskrun._observe._otel import activate_context
memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
with activate_context(json.loads(sys.stdin.read())):
    with provider.get_tracer("worker").start_as_current_span("in process"):
        pass
(span,) = memory.get_finished_spans()
print(json.dumps({"trace": span.context.trace_id, "parent": span.parent.span_id}))
"""


def test_context_carrier_crosses_into_another_process(exporter: Any) -> None:
    provider, _ = exporter
    with provider.get_tracer("app").start_as_current_span("submit") as span:
        carrier = capture_context()
    assert "traceparent" in carrier
    out = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(carrier), capture_output=True,
                         text=True, timeout=60, check=True)
    got = json.loads(out.stdout)
    assert got == {"trace": span.get_span_context().trace_id, "parent": span.get_span_context().span_id}


def test_configuration_checks() -> None:
    assert tracer_provider_configured() is (not isinstance(trace.get_tracer_provider(),
                                                            trace.ProxyTracerProvider))
    with pytest.raises(TypeError, match="carrier must be"), activate_context([1]):  # type: ignore[arg-type]
        pass
