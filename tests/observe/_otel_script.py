"""One flow per runner (threads, processes, Dask) with a tracer provider configured.

Task bodies report the trace id they see (in worker threads, worker processes and Dask
workers); spans are caught by the SDK's in-memory exporter. Prints one JSON document.
"""

from __future__ import annotations

import json

import distributed
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner, flow, task
from taskrun.dask import DaskTaskRunner

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


@task
def seen_trace(i: int) -> str:
    return format(trace.get_current_span().get_span_context().trace_id, "032x")


def run(name: str, runner: object) -> dict[str, object]:
    @flow(name=f"flow-{name}", task_runner=runner)
    def traced() -> list[str]:
        return seen_trace.map(range(4)).result()

    seen = traced()
    spans = exporter.get_finished_spans()
    (flow_span,) = [s for s in spans if s.name == f"flow flow-{name}"]
    tasks = [s for s in spans if s.name == "task seen_trace"
             and s.attributes.get("taskrun.flow_run.name", "").startswith(f"flow-{name}")]
    exporter.clear()
    return {
        "flow_trace": format(flow_span.context.trace_id, "032x"),
        "flow_span": flow_span.context.span_id,
        "seen": seen,
        "task_traces": [format(s.context.trace_id, "032x") for s in tasks],
        "task_parents": [s.parent.span_id if s.parent else None for s in tasks],
        "workers": sorted({str(s.attributes.get("taskrun.worker", "")) for s in tasks}),
    }


if __name__ == "__main__":
    import time
    t0 = time.monotonic()
    out = {"thread": run("thread", ThreadPoolTaskRunner(max_workers=2)),
           "process": run("process", ProcessPoolTaskRunner(max_workers=2))}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        out["dask"] = run("dask", DaskTaskRunner(address=cluster.scheduler_address))
    out["seconds"] = time.monotonic() - t0
    print(json.dumps(out))
