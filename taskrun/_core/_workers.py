"""The worker-thread bridge: sync calls run on threads fed by one queue.

The loop puts a :class:`Job` on the queue; an idle worker thread runs it inside
the job's context and appends the outcome to a shared batch.  The first outcome
of a batch schedules one drain on the loop; the drain hands every outcome of the
batch to its waiter.  So the loop is woken once per batch, not once per call.

Threads are started only when a job finds no idle thread (a run blocked on
another future keeps its thread, so more threads than slots may exist), and are
all stopped and joined when the pool closes, except a thread still inside a call
whose run was abandoned (timed out or cancelled): that one exits on its own when
the call returns.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Generator
from typing import Any

from ._backend import Backend


class Job:
    """One sync call to make on a worker thread; awaited by the engine.

    ``await job`` yields the job to whichever driver steps the run; the driver
    queues it and says how the outcome comes back: through ``waiter`` (a loop
    waiter, in a task driver) or by stepping the run on (``resume``, the direct
    driver). The outcome is delivered once; a later one is dropped.
    """

    __slots__ = ("abandoned", "args", "context", "coro", "fn", "kwargs", "resume", "run", "waiter")

    def __init__(self, context: contextvars.Context, fn: Callable[..., Any],
                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.context = context
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.abandoned = False
        self.waiter: Any = None
        self.resume: Any = None
        self.run: Any = None
        self.coro: Any = None

    def __await__(self) -> Generator[Any, Any, tuple[bool, Any]]:
        return (yield self)  # type: ignore[misc]

    def deliver(self, outcome: tuple[bool, Any]) -> None:
        """(loop thread) Hand the outcome to the run, the first time only."""
        resume = self.resume
        if resume is not None:
            self.resume = None
            run, coro = self.run, self.coro
            self.run = self.coro = None
            resume(run, coro, outcome)
            return
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set(outcome)

    def cancel(self) -> None:
        """(loop thread) Stop waiting for this call; the engine sees a cancelled run."""
        from ._backend import RunCancelledSignal

        self.abandoned = True
        self.deliver((False, RunCancelledSignal))


class _WorkerState:
    __slots__ = ("job", "thread")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.job: Job | None = None


class WorkerPool:
    """Threads that run sync calls for one runner; see the module docstring."""

    def __init__(self, backend: Backend, name: str) -> None:
        self._backend = backend
        self._name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._workers: list[_WorkerState] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._done: list[tuple[Job, tuple[bool, Any]]] = []
        self._closed = False

    def put(self, job: Job) -> None:
        """Queue a job (any thread); starts a thread if none is idle."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            if self._idle:
                self._idle -= 1
                start = False
            else:
                start = True
        self._jobs.put(job)
        if start:
            self._start_worker()

    def _start_worker(self) -> None:
        state = _WorkerState()
        thread = threading.Thread(
            target=self._work, args=(state,), name=f"{self._name}-worker-{len(self._workers)}", daemon=True
        )
        state.thread = thread
        with self._lock:
            self._workers.append(state)
        thread.start()

    def _work(self, state: _WorkerState) -> None:
        get = self._jobs.get
        lock = self._lock
        wake = self._backend.call_soon_threadsafe
        drain = self._drain
        while True:
            job = get()
            if job is None:
                return
            state.job = job
            try:
                outcome: tuple[bool, Any] = (True, job.context.run(job.fn, *job.args, **job.kwargs))
            except BaseException as exc:
                outcome = (False, exc)
            state.job = None
            with lock:
                done = self._done
                done.append((job, outcome))
                first = len(done) == 1
                self._idle += 1
            job = None
            if first:
                try:
                    wake(drain)
                except RuntimeError:  # the loop is gone; nobody is waiting any more
                    pass

    def _drain(self) -> None:
        with self._lock:
            batch = self._done
            self._done = []
        for job, outcome in batch:
            job.deliver(outcome)

    def close(self) -> list[threading.Thread]:
        """Stop accepting jobs and tell every thread to exit; returns the threads to join.

        Threads busy with an abandoned call are not returned: they exit when the
        call returns.
        """
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for _ in workers:
            self._jobs.put(None)
        return [
            w.thread for w in workers
            if w.thread is not None and not (w.job is not None and w.job.abandoned)
        ]


def join_threads(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()
