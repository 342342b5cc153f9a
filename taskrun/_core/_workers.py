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
from collections import deque
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

    __slots__ = ("abandoned", "args", "context", "coro", "fn", "kwargs", "owner", "resume", "run", "waiter")

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
        #: The run whose body this is, when its slot may be handed on from the
        #: worker thread (see WorkerPool.stage); None for other calls.
        self.owner: Any = None

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
        # Staged jobs: bodies of runs that are ready but wait for a slot. A worker
        # that finishes a body whose run holds a slot passes the slot to the first
        # of them and runs it at once, without a round trip through the loop.
        self._staged: deque[Job] = deque()
        self.resuming: Any = ()  # the dispatcher's blocked runs waiting for a slot
        self.on_start: Any = None  # called with a staged run as its body starts

    @property
    def thread_count(self) -> int:
        return len(self._workers)

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

    def stage(self, job: Job) -> None:
        """(loop thread) Keep ``job`` until a slot passes to it."""
        with self._lock:
            self._staged.append(job)

    @property
    def staged_count(self) -> int:
        return len(self._staged)

    def take_staged(self) -> Job | None:
        """The first staged job not abandoned (any thread), or None."""
        with self._lock:
            return self._pop_staged()

    def _pop_staged(self) -> Job | None:
        staged = self._staged
        while staged:
            job = staged.popleft()
            if not job.abandoned:
                return job
        return None

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
        job: Job | None = None
        while True:
            if job is None:
                job = get()
                if job is None:
                    return
            state.job = job
            try:
                outcome: tuple[bool, Any] = (True, job.context.run(job.fn, *job.args, **job.kwargs))
            except BaseException as exc:
                outcome = (False, exc)
            state.job = None
            owner = job.owner
            with lock:
                nxt = None
                if owner is not None and owner._holds_slot and not self.resuming and self._staged:
                    nxt = self._pop_staged()
                    if nxt is not None:
                        # The slot goes from this run (whose body is done) to the next.
                        owner._holds_slot = False
                        owner._slot_passed = True
                        successor = nxt.owner
                        successor._holds_slot = True
                        successor._staged = False
                done = self._done
                done.append((job, outcome))
                first = len(done) == 1
                if nxt is None:
                    self._idle += 1
            job = nxt
            if nxt is not None:
                self.on_start(nxt.owner)
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
