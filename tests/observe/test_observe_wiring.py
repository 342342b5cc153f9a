"""The engine, wired: real runs on every runner produce events, records, progress and spans."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner, as_completed, flow, task
from taskrun._observe import _events
from taskrun._observe._progress import Progress
from taskrun.report import RunRecord, read_records

HERE = Path(__file__).parent
FLOW_SCRIPT = HERE / "_flow_script.py"
OTEL_SCRIPT = HERE / "_otel_script.py"


@task(retries=1, retry_delay_seconds=0)
def flaky(i: int) -> int:
    if i == 3:
        raise ValueError(f"bad {i}")
    return i


@task
def after(x: int) -> int:
    return x + 1


@task
async def later(x: int) -> int:
    await anyio.sleep(0.001)
    return x * 10


@task
def square(x: int) -> int:
    return x * x


def _by_task(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for r in records:
        out.setdefault(r.task_name, []).append(r)
    return out


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKRUN_", "OTEL_"))}
    env.update(extra)
    return env


def test_thread_pool_flow_records_every_run_and_reports_on_its_state() -> None:
    @flow(record=True, task_runner=ThreadPoolTaskRunner(max_workers=3))
    def pipeline(n: int) -> int:
        parsed = after.map(flaky.map(range(n)))
        parsed.wait()
        return square(4)  # a direct call, recorded too

    state = pipeline.call_with_state(6)
    assert state.is_completed() and state.result() == 16
    report = state.report
    assert report is not None
    records = report.records
    tasks = _by_task(records)
    assert {name: len(rs) for name, rs in tasks.items()} == {"flaky": 6, "after": 6, "square": 1}
    (bad,) = [r for r in tasks["flaky"] if r.state_name == "Failed"]
    assert bad.attempts == 2 and bad.retries == 1 and bad.error_type == "ValueError"
    assert [c.state_name for c in bad.states] == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    (not_ready,) = [r for r in tasks["after"] if r.state_name == "NotReady"]
    assert bad.task_run_id in not_ready.upstream_ids
    assert {r.flow_run_name for r in records} == {records[0].flow_run_name}
    assert records[0].flow_run_name.startswith("pipeline-")
    ran = [r for r in records if r.state_name == "Completed"]
    assert all(r.thread and r.pid == os.getpid() and r.duration is not None for r in ran)
    assert all(r.thread and r.thread.startswith("taskrun-threadpool-worker") for r in tasks["flaky"])
    assert not_ready.thread is None and not_ready.lane == "did not run"
    counts = report.counts()
    assert counts["flaky"] == {"COMPLETED": 5, "FAILED": 1} and counts["after"]["PENDING"] == 1
    (flaky_row,) = [t for t in report.tasks if t.task == "flaky"]
    assert flaky_row.retried == 1 and flaky_row.runs == 6
    assert "flaky" in str(report) and "ValueError: bad 3" in str(report)
    assert not _events.ACTIVE, "the flow's recorder unsubscribed when the flow ended"


def test_a_flow_that_records_nothing_has_no_report() -> None:
    @flow
    def plain() -> int:
        return after(1)

    state = plain.call_with_state()
    assert state.result() == 2 and state.report is None


@pytest.mark.anyio
async def test_async_flow_records_sync_and_async_tasks() -> None:
    @flow(record=True)
    async def pipeline(n: int) -> list[int]:
        return await later.map(after.map(range(n))).result_async()  # type: ignore[no-any-return]

    state = await pipeline.call_with_state(5)
    assert state.result() == [10, 20, 30, 40, 50]
    tasks = _by_task(state.report.records)
    assert len(tasks["after"]) == 5 and len(tasks["later"]) == 5
    for r in tasks["later"]:
        names = [c.state_name for c in r.states]
        assert names[0] == "Pending" and names[-1] == "Completed" and "Running" in names


def test_process_pool_runs_name_their_worker_process() -> None:
    @flow(record=True, task_runner=ProcessPoolTaskRunner(max_workers=2))
    def crunch(n: int) -> list[int]:
        return square.map(range(n)).result()  # type: ignore[no-any-return]

    state = crunch.call_with_state(6)
    assert state.result() == [0, 1, 4, 9, 16, 25]
    records = state.report.records
    assert len(records) == 6
    workers = {r.worker for r in records}
    assert all(w and w.startswith("pid ") and w != f"pid {os.getpid()}" for w in workers)
    assert all(r.lane == r.worker for r in records)


def test_dask_runs_are_recorded_once_with_their_worker_and_start_time() -> None:
    distributed = pytest.importorskip("distributed")
    import logging

    from taskrun.dask import DaskTaskRunner

    # An in-process worker sets the run logger's level as a worker process would: put it back.
    run_logger = logging.getLogger("taskrun.task_runs")
    level = run_logger.level
    try:
        state = _on_dask_in_process(distributed, DaskTaskRunner)
    finally:
        run_logger.setLevel(level)
    _check_dask_records(state)


def _on_dask_in_process(distributed: Any, runner_class: Any) -> Any:
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        # processes=False: the worker shares this process, and its copies of the runs stay silent.
        @flow(record=True, task_runner=runner_class(address=cluster.scheduler_address))
        def on_dask(n: int) -> list[int]:
            return after.map(square.map(range(n))).result()  # type: ignore[no-any-return]

        return on_dask.call_with_state(4)


def _check_dask_records(state: Any) -> None:
    assert state.result() == [1, 2, 5, 10]
    records = state.report.records
    assert sorted(r.task_name for r in records) == ["after"] * 4 + ["square"] * 4
    assert len({r.task_run_id for r in records}) == 8
    for r in records:
        names = [c.state_name for c in r.states]
        assert names == ["Pending", "Running", "Completed"], names
        assert r.worker is not None and r.worker.startswith("inproc://"), r.worker
        assert r.duration is not None and r.duration >= 0


def test_runner_record_and_summary(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    with ThreadPoolTaskRunner(max_workers=2).record(path) as runner:
        runner.map(flaky, {"i": range(5)}).wait()
    summary = runner.summary()
    assert summary.counts()["flaky"] == {"COMPLETED": 4, "FAILED": 1}
    assert len(read_records(path)) == 5
    with ThreadPoolTaskRunner() as bare:
        bare.map(square, {"x": [1]}).wait()
    with pytest.raises(RuntimeError, match=r"runner.summary\(\) needs .*record\(\)"):
        bare.summary()
    with pytest.raises(TypeError, match="file path"):
        ThreadPoolTaskRunner().record(3)  # type: ignore[arg-type]


def test_bad_switches_are_refused_where_they_are_given() -> None:
    with pytest.raises(TypeError, match="record= of flow '<lambda>' must be True"):
        flow(record=3)(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="progress= of flow"):
        flow(progress="yes")(lambda: None)  # type: ignore[call-overload]
    with ThreadPoolTaskRunner(), pytest.raises(TypeError, match=r"progress= of square.map\(\)"):
        square.map([1], progress="on")


def _final_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"taskrun: {name} ")]


def test_map_progress_prints_the_final_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    with ThreadPoolTaskRunner(max_workers=3):
        flaky.map(range(8), progress=True).wait()
        _events.flush()
    lines = _final_lines(out.getvalue(), "flaky")
    assert lines and lines[-1].startswith("taskrun: flaky 7/8 done, 1 failed, 0 running")


def test_imap_and_as_completed_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        assert sum(runner.imap(square, {"x": range(6)}, progress=True)) == 55
        futures = runner.map(after, {"x": range(4)})
        assert sorted(f.result() for f in as_completed(futures, progress=True)) == [1, 2, 3, 4]
        _events.flush()
        _events.flush()
    text = out.getvalue()
    assert _final_lines(text, "square")[-1].startswith("taskrun: square 6/6 done, 0 failed")
    assert _final_lines(text, "after")[-1].startswith("taskrun: after 4/4 done, 0 failed")


@pytest.mark.anyio
async def test_aimap_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        got = [v async for v in runner.aimap(later, {"x": range(5)}, progress=True)]
        await anyio.to_thread.run_sync(_events.flush)
        await anyio.to_thread.run_sync(_events.flush)
    assert got == [0, 10, 20, 30, 40]
    assert _final_lines(out.getvalue(), "later")[-1].startswith("taskrun: later 5/5 done")


def test_a_flow_shows_progress_with_the_environment_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("TASKRUN_PROGRESS", "1")

    @flow
    def shown() -> int:
        return sum(after.map(range(3)).result())

    assert shown() == 6
    assert _final_lines(out.getvalue(), "after")[-1].startswith("taskrun: after 3/3 done")
    assert isinstance(Progress(), Progress)


def test_progress_of_a_real_flow_under_a_terminal() -> None:
    pytest.importorskip("rich", reason="the live display needs the progress extra (rich)")
    from test_observe_progress import ANSI, _run_in_pty_script

    raw = _run_in_pty_script(FLOW_SCRIPT, ["60"], {"TASKRUN_PROGRESS": "1"})
    screen = ANSI.sub("", raw).replace("\r", "\n")
    assert "flow Completed: 56 parsed" in screen
    assert "━" in screen  # rich drew bars
    final = [line for line in screen.splitlines() if "done" in line]
    assert any("fetch" in line and "56/60 done" in line and "4 failed" in line for line in final), final
    assert any("parse" in line and "56/60 done" in line for line in final), final


def test_recorded_script_to_report_and_chrome_trace(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    for mode in ("sync", "async"):
        done = subprocess.run([sys.executable, str(FLOW_SCRIPT), "34", mode], capture_output=True, text=True,
                              timeout=60, env=_env(TASKRUN_RECORD=str(runs)))
        assert done.returncode == 0, done.stderr
    records = read_records(runs)
    tasks = _by_task(records)
    assert len(tasks["fetch"]) == 68 and len(tasks["parse"]) == 68 and len(tasks["store"]) == 34
    assert len({r.flow_run_id for r in records}) == 2
    html, chrome = tmp_path / "runs.html", tmp_path / "runs.trace.json"
    done = subprocess.run([sys.executable, "-m", "taskrun", "report", str(runs), "-o", str(html),
                           "--chrome-trace", str(chrome)], capture_output=True, text=True, timeout=60,
                          env=_env())
    assert done.returncode == 0, done.stderr
    assert f"wrote {html} (170 runs)" in done.stdout and "fetch" in done.stdout
    events = json.loads(chrome.read_text())["traceEvents"]
    assert sum(1 for e in events if e["ph"] == "X") == 170
    bad = subprocess.run([sys.executable, "-m", "taskrun", "nonsense"], capture_output=True, text=True,
                         timeout=60, env=_env())
    assert bad.returncode == 2 and "unknown command 'nonsense'" in bad.stderr


def test_one_trace_per_flow_on_threads_processes_and_dask() -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("distributed")
    done = subprocess.run([sys.executable, str(OTEL_SCRIPT)], capture_output=True, text=True, timeout=110,
                          env=_env())
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for runner in ("thread", "process", "dask"):
        one = result[runner]
        assert one["seen"] == [one["flow_trace"]] * 4, (runner, one)  # the bodies ran inside the flow's trace
        assert one["task_traces"] == [one["flow_trace"]] * 4, (runner, one)
        assert one["task_parents"] == [one["flow_span"]] * 4, (runner, one)
    assert result["process"]["workers"][0].startswith("pid ")
    assert result["dask"]["workers"][0].startswith("tcp://127.0.0.1:")
