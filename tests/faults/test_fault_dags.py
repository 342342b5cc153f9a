"""Random fault DAGs on every runner: each final state is the one the model predicts.

Several seeds per run; the seed is in the test id and in every failure message.
Replay one with ``TASKRUN_FAULT_SEED=<seed> python -m pytest tests/faults``.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner, allow_failure
from taskrun.futures import TaskFuture, wait, wait_async

from ._bodies import async_node, sync_node
from ._model import BEHAVIOURS, Node, Outcome, make_dag, predict


def _seeds(fixed: tuple[int, ...]) -> list[int]:
    given = os.environ.get("TASKRUN_FAULT_SEED")
    if given:
        return [int(given)]
    return [*fixed, random.SystemRandom().randrange(1, 2**31)]


SEEDS = _seeds((1, 2, 3))
SMALL_SEEDS = _seeds((7,))
TIMEOUT = 0.1


class _Record:
    """What the raising hooks and callbacks let through: the recorder after them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hooks: set[tuple[int, str]] = set()
        self.callbacks: set[int] = set()

    def hook_list(self, node: Node) -> list[Callable[..., None]]:
        error: BaseException = ValueError("a raising hook") if node.raising_hook == "value" \
            else SystemExit(3)

        def raising(task: Any, run: Any, state: Any) -> None:
            raise error

        def recorder(task: Any, run: Any, state: Any, key: int = node.key) -> None:
            with self._lock:
                self.hooks.add((key, state.name))

        return [raising, recorder]

    def watch(self, key: int, future: TaskFuture[Any]) -> None:
        def raising(_: TaskFuture[Any]) -> None:
            raise SystemExit(4)

        def recorder(_: TaskFuture[Any]) -> None:
            with self._lock:
                self.callbacks.add(key)

        future.add_done_callback(raising)
        future.add_done_callback(recorder)


def _submit_all(runner: Any, nodes: list[Node], record: _Record) -> list[TaskFuture[Any]]:
    futures: list[TaskFuture[Any]] = []

    def given(inp: Any) -> Any:
        future = futures[inp.node]
        return allow_failure(future) if inp.allowed else future

    for node in nodes:
        options: dict[str, Any] = {"name": f"n{node.key}", "retries": node.retries,
                                   "retry_delay_seconds": 0}
        if node.behaviour == "timeout":
            options["timeout_seconds"] = TIMEOUT
        if node.raising_hook is not None:
            hooks = record.hook_list(node)
            options.update(on_completion=hooks, on_failure=hooks)
        body = (async_node if node.is_async else sync_node).with_options(**options)
        params: dict[str, Any] = {"key": node.key, "behaviour": node.behaviour, "failures": node.failures}
        for name, inp in zip("ab", node.params, strict=False):
            params[name] = given(inp)
        waits = [given(inp) for inp in node.waits] or None
        future = runner.submit(body, params, wait_for=waits)
        if node.raising_callback:
            record.watch(node.key, future)
        futures.append(future)
    for node, future in zip(nodes, futures, strict=True):
        if node.behaviour == "cancel":
            future.cancel()
    return futures


def _observed(future: TaskFuture[Any]) -> Outcome:
    state = future.state
    value = state.result() if state.is_completed() else None
    return Outcome(state.type.name, state.name, value)


def _check(seed: int, where: str, nodes: list[Node], futures: list[TaskFuture[Any]],
           record: _Record) -> None:
    expected = predict(nodes)
    replay = f"seed {seed} on {where} (replay: TASKRUN_FAULT_SEED={seed} python -m pytest tests/faults)"
    assert all(f.done() for f in futures), f"{replay}: runs not final after the runner closed"
    wrong = [(n, e, _observed(f)) for n, e, f in zip(nodes, expected, futures, strict=True)
             if _observed(f) != e]
    assert not wrong, f"{replay}: {len(wrong)} of {len(nodes)} runs ended otherwise than predicted:\n" + \
        "\n".join(f"  {n}\n    expected {e}\n    observed {o} ({f.state.message})"
                  for (n, e, o), f in ((w, futures[w[0].key]) for w in wrong))
    hooked = {(n.key, e.name) for n, e in zip(nodes, expected, strict=True)
              if n.raising_hook is not None and e.type in ("COMPLETED", "FAILED", "CRASHED")}
    assert record.hooks == hooked, f"{replay}: hooks after a raising hook: {record.hooks ^ hooked}"
    called = {n.key for n in nodes if n.raising_callback}
    assert record.callbacks == called, f"{replay}: callbacks after a raising one: {called - record.callbacks}"


def _dag(seed: int, size: int, behaviours: tuple[str, ...] = BEHAVIOURS, with_async: bool = True,
         with_hooks: bool = True) -> list[Node]:
    return make_dag(seed, size, behaviours, with_async, with_hooks)


def _run_with(seed: int, label: str, nodes: list[Node], runner: Any, timeout: float) -> None:
    """Submit the DAG inside ``with runner:``, wait for it, and check every run."""
    record = _Record()
    with runner:
        futures = _submit_all(runner, nodes, record)
        wait(futures, timeout=timeout)
    _check(seed, label, nodes, futures, record)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_thread_pool_with(seed: int) -> None:
    _run_with(seed, "ThreadPoolTaskRunner (with)", _dag(seed, 40), ThreadPoolTaskRunner(max_workers=4), 30)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
@pytest.mark.anyio
async def test_thread_pool_async_with(seed: int, anyio_backend: str) -> None:
    nodes = _dag(seed, 40)
    record = _Record()
    with anyio.fail_after(30):
        async with ThreadPoolTaskRunner(max_workers=4) as runner:
            futures = _submit_all(runner, nodes, record)
            await wait_async(futures)
    _check(seed, f"ThreadPoolTaskRunner (async with, {anyio_backend})", nodes, futures, record)


@pytest.mark.parametrize("seed", SMALL_SEEDS, ids=lambda s: f"seed={s}")
def test_process_pool(seed: int) -> None:
    # Sync bodies only, no hooks (they would have to be pickled with the task).
    nodes = _dag(seed, 14, with_async=False, with_hooks=False)
    _run_with(seed, "ProcessPoolTaskRunner", nodes, ProcessPoolTaskRunner(max_workers=2), 30)


@pytest.mark.parametrize("seed", SMALL_SEEDS, ids=lambda s: f"seed={s}")
def test_dask(seed: int) -> None:
    pytest.importorskip("distributed")
    from taskrun.dask import DaskTaskRunner

    # No cancellation: a cancelled queued body is a documented Dask difference
    # (README, Scaling out / Dask).
    behaviours = tuple(b for b in BEHAVIOURS if b != "cancel")
    nodes = _dag(seed, 12, behaviours, with_async=False, with_hooks=False)
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 2})
    _run_with(seed, "DaskTaskRunner", nodes, runner, 60)


def test_the_model_is_not_trivial() -> None:
    """Each seed's DAG mixes outcomes, so a run that always ends the same way fails."""
    for seed in (1, 2, 3):
        kinds = {o.type for o in predict(_dag(seed, 40))}
        assert {"COMPLETED", "FAILED", "PENDING"} <= kinds, (seed, kinds)
