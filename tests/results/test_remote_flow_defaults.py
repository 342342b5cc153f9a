"""A flow's result defaults (and its run id and parameters in keys) reach task runs whose engine
runs elsewhere: on Dask workers (a real LocalCluster) and with the process pool (the engine in the
parent, the body in a worker process)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import taskrun
from taskrun import ProcessPoolTaskRunner, flow
from taskrun._engine._caching import RemoteFlow, adopt_remote_flow
from taskrun._results._records import decode_record
from taskrun._results._service import flow_result_defaults
from taskrun.cache_policies import FLOW_PARAMETERS, INPUTS

from ._engine_tasks import atenfold, executions, records, square, tenfold


def _runner(kind: str, dask_address: str | None) -> Any:
    if kind == "process":
        return ProcessPoolTaskRunner(max_workers=2)
    from taskrun.dask import DaskTaskRunner

    return DaskTaskRunner(address=dask_address)


@pytest.fixture(params=["dask", "process"])
def runner_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def address(runner_kind: str, request: pytest.FixtureRequest) -> str | None:
    return str(request.getfixturevalue("dask_address")) if runner_kind == "dask" else None


@pytest.mark.parametrize("which", ["sync", "async"])
def test_flow_defaults_persist_and_serve_runs_of_tasks_without_options(
        runner_kind: str, address: str | None, tmp_path: pathlib.Path, marks: str, which: str) -> None:
    store = tmp_path / "store"
    body = tenfold if which == "sync" else atenfold

    @flow(persist_result=True, result_storage=str(store), result_serializer="json",
          task_runner=_runner(runner_kind, address))
    def pipeline() -> tuple[list[int], list[str], list[str]]:
        first = body.map(range(3), marks=taskrun.unmapped(marks))
        values = first.result()
        again = body.map(range(3), marks=taskrun.unmapped(marks))  # same flow run: same keys
        assert again.result() == values
        return values, [f.state.name for f in first], [f.state.name for f in again]

    values, first, again = pipeline()
    assert values == [0, 10, 20]
    assert first == ["Completed"] * 3 and again == ["Cached"] * 3
    assert [executions(marks, f"{body.name}{x}") for x in range(3)] == [1] * 3
    written = records(store)
    assert len(written) == 3  # in the flow's storage, with the flow's serializer
    assert {decode_record(p.read_bytes())[0].serializer for p in written} == {"json"}


def test_flow_parameters_in_keys_on_dask(dask_address: str, tmp_path: pathlib.Path, marks: str) -> None:
    from taskrun.dask import DaskTaskRunner

    store = tmp_path / "store"
    t = square.with_options(cache_policy=FLOW_PARAMETERS + INPUTS - "marks", result_storage=str(store))

    @flow(task_runner=DaskTaskRunner(address=dask_address))
    def pipeline(region: str) -> str:
        future = t.submit(3, marks)
        assert future.result() == 9
        return future.state.name

    assert pipeline("eu") == "Completed"
    assert pipeline("eu") == "Cached"      # same flow parameters: a hit
    assert pipeline("us") == "Completed"   # other flow parameters: another key
    assert executions(marks, "square3") == 2


def test_remote_flow_pickles_without_the_memo_and_is_adopted_once(tmp_path: pathlib.Path) -> None:
    import pickle
    import uuid

    defaults = flow_result_defaults(persist_result=True, result_storage=str(tmp_path))
    assert defaults is not None
    defaults._merged[1] = (None, None)
    copy = pickle.loads(pickle.dumps(RemoteFlow(uuid.uuid4(), None, defaults)))
    assert copy.result_defaults == defaults and copy.result_defaults._merged == {}
    again = pickle.loads(pickle.dumps(copy))
    first, second = adopt_remote_flow(copy), adopt_remote_flow(again)
    assert first.result_defaults is second.result_defaults  # one object: its merged configs are shared
