from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from _fakes import FakeRun, FakeTask, make_runs, play

from taskrun._observe import _events
from taskrun._observe._events import Event, FlowRunInfo, subscribe
from taskrun.states import Completed, Running


def _events_thread_alive() -> bool:
    return any(t.name == "taskrun-events" and t.is_alive() for t in threading.enumerate())


def test_nothing_is_buffered_or_started_without_subscribers() -> None:
    assert not _events.ACTIVE and not _events._subscribers
    run = make_runs("t", 1)[0]
    play(run)
    assert len(_events._buffer) == 0
    assert not _events_thread_alive()


def test_callbacks_run_on_the_delivery_thread_in_order() -> None:
    seen: list[tuple[str, str, str]] = []
    emitted_on = threading.current_thread().name
    runs = make_runs("fetch", 5)
    with subscribe(lambda e: seen.append((e.kind, e.run.task_run_name, threading.current_thread().name))):
        assert _events.ACTIVE and _events_thread_alive()
        for run in runs:
            play(run)
    assert [(k, n) for k, n, _ in seen] == [
        (kind, run.task_run_name) for run in runs for kind in ("submitted", "state", "finished")
    ]
    assert {thread for _, _, thread in seen} == {"taskrun-events"} != {emitted_on}
    assert not _events.ACTIVE
    assert not _events_thread_alive(), "the delivery thread must stop with the last subscriber"


def test_event_fields() -> None:
    got: list[Event] = []
    run = FakeRun(FakeTask("fetch"), "fetch-1")
    with subscribe(got.append):
        _events.emit_state(run, Running(), worker="tcp://127.0.0.1:1")
        _events.emit_finished(run, Completed(3), cached=True)
    state_event, finished = got
    assert state_event.kind == "state" and state_event.worker == "tcp://127.0.0.1:1"
    assert state_event.state is not None and state_event.state.name == "Running"
    assert finished.cached and finished.state is not None and finished.state.result() == 3
    assert finished.thread == threading.current_thread().name
    assert finished.monotonic >= state_event.monotonic
    assert abs(finished.wall - finished.state._ts) < 0.5


def test_batched_subscriber_gets_lists() -> None:
    batches: list[list[Event]] = []
    with subscribe(batches.append, batched=True):
        for run in make_runs("t", 50):
            play(run)
    assert sum(len(b) for b in batches) == 150
    assert len(batches) < 150
    assert all(isinstance(b, list) for b in batches)


def test_a_raising_callback_is_logged_and_delivery_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    good: list[str] = []

    def bad(event: Event) -> None:
        raise RuntimeError("callback broke")

    caplog.set_level(logging.ERROR, logger="taskrun.events")
    with subscribe(bad), subscribe(lambda e: good.append(e.kind)):
        for run in make_runs("t", 3):
            play(run)
        _events.flush()
        assert len(good) == 9
        for run in make_runs("t", 2):
            play(run)
    assert len(good) == 15
    errors = [r for r in caplog.records if "callback broke" in str(r.exc_info[1] if r.exc_info else "")]
    assert len(errors) == 15


def test_flush_waits_for_delivery() -> None:
    seen: list[Event] = []
    with subscribe(seen.append):
        for run in make_runs("t", 10):
            play(run)
        assert _events.flush(timeout=5)
        assert len(seen) == 30


def test_unsubscribe_delivers_pending_events_and_is_idempotent() -> None:
    seen: list[Event] = []
    other: list[Event] = []
    first = subscribe(seen.append)
    second = subscribe(other.append)
    play(make_runs("t", 1)[0])
    first()
    assert len(seen) == 3 and not first.active
    first.unsubscribe()
    assert _events_thread_alive(), "another subscriber is still there"
    play(make_runs("t", 1)[0])
    second.unsubscribe()
    assert len(seen) == 3 and len(other) == 6
    assert not _events_thread_alive()


def test_unsubscribe_from_inside_a_callback() -> None:
    seen: list[Event] = []
    done = threading.Event()

    def once(event: Event) -> None:
        seen.append(event)
        subscription.unsubscribe()
        done.set()

    subscription = subscribe(once)
    play(make_runs("t", 1)[0])
    assert done.wait(5)
    for _ in range(500):
        if not _events_thread_alive():
            break
        threading.Event().wait(0.01)
    assert not subscription.active and not _events.ACTIVE
    assert not _events_thread_alive()
    assert len(seen) >= 1


def test_subscribe_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        subscribe(42)  # type: ignore[arg-type]


def test_flow_runs_are_attached_to_the_runs_submitted_inside() -> None:
    seen: list[Event] = []
    flow = FlowRunInfo("nightly", parameters={"day": 1})
    with subscribe(seen.append):
        token = _events.emit_flow_started(flow)
        assert _events.current_flow() is flow
        inner = make_runs("t", 1)[0]
        play(inner)
        _events.emit_flow_finished(flow, Completed(), token)
        assert _events.current_flow() is None
        outside = make_runs("t", 1)[0]
        play(outside)
    kinds = [e.kind for e in seen]
    assert kinds[0] == "flow_started" and "flow_finished" in kinds
    assert all(e.flow is flow for e in seen if e.run is inner)
    assert all(e.flow is None for e in seen if e.run is outside)
    assert flow.flow_run_name.startswith("nightly-")


def test_runs_in_threads_see_the_flow_of_their_context() -> None:
    import contextvars

    seen: list[Event] = []
    flow = FlowRunInfo("f")
    with subscribe(seen.append):
        token = _events.emit_flow_started(flow)
        context = contextvars.copy_context()
        run = make_runs("t", 1)[0]
        thread = threading.Thread(target=context.run, args=(play, run), name="worker-x")
        thread.start()
        thread.join()
        _events.emit_flow_finished(flow, Completed(), token)
    mine = [e for e in seen if e.run is run]
    assert mine and all(e.flow is flow and e.thread == "worker-x" for e in mine)


@pytest.mark.anyio
async def test_emitting_from_async_code_never_runs_callbacks_on_the_loop() -> None:
    threads: list[str] = []
    loop_thread = threading.current_thread().name

    def record(event: Event) -> Any:
        threads.append(threading.current_thread().name)

    subscription = subscribe(record)
    try:
        for run in make_runs("t", 5):
            play(run)
            await anyio.lowlevel.checkpoint()
        await anyio.to_thread.run_sync(_events.flush)
    finally:
        await anyio.to_thread.run_sync(subscription.unsubscribe)
    assert len(threads) == 15 and loop_thread not in threads


def test_tick_subscribers_get_empty_batches_when_idle() -> None:
    batches: list[list[Event]] = []
    got_tick = threading.Event()

    def on_batch(batch: list[Event]) -> None:
        batches.append(batch)
        if not batch:
            got_tick.set()

    with subscribe(on_batch, batched=True, ticks=True):
        assert got_tick.wait(5)
    assert [] in batches
    with pytest.raises(ValueError, match="needs batched=True"):
        subscribe(print, ticks=True)
