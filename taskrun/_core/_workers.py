"""The worker-thread bridge: sync calls run on threads fed by one queue.

The dispatcher puts a :class:`Job` on the queue; an idle worker thread runs it
inside the job's context.  What happens to the outcome depends on who waits:

- a run stepped by the direct driver (``job.resume``) is stepped on by the
  worker thread itself, right away: the run finishes, its slot passes to the
  next ready run, and that run's body comes back to this same thread (its
  *next* job) instead of the queue.  Runs made ready on the way (dependants of
  the finished run) are admitted by this thread once the step is over.  So a
  sync run costs no wake-up of another thread while work is at hand, and a
  chain of dependent runs stays on one thread.
- a run in a loop task (``job.waiter``) is woken on the loop: the outcome joins
  a shared batch, and the first outcome of a batch schedules one drain there.

Threads are started only when a job finds no idle thread (a run blocked on
another future keeps its thread, so more threads than slots may exist), and are
all stopped and joined when the pool closes, except a thread still inside a call
whose run was abandoned (timed out or cancelled): that one exits on its own when
the call returns.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import types
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from ._backend import Backend, RunCancelledSignal

#: Taken to claim the one delivery of a job's outcome (a worker and a cancel may race).
_claim_lock = threading.Lock()
#: ``state``: the :class:`_WorkerState` of this thread, on worker threads.
_local = threading.local()


class WorkerStartFailed(BaseException):
    """No worker thread could be started for a job (``can't start new thread``).

    The job's attempt ends with it: a ``BaseException``, so the run ends
    ``Crashed`` (it is the host's trouble, not the body's) and is not retried.
    """


class Job:
    """One sync call to make on a worker thread; awaited by the engine.

    ``await job`` yields the job to whichever driver steps the run; the driver
    queues it and says how the outcome comes back: through ``waiter`` (a loop
    waiter, in a task driver) or by stepping the run on (``resume``, the direct
    driver). The outcome is delivered once; a later one is dropped.
    """

    __slots__ = ("abandoned", "args", "context", "coro", "fn", "future", "kwargs", "resume", "run", "waiter")
    #: (asyncio's task driver only, which sets it) The loop future of ``waiter``
    #: the driver's task waits on; kept here, not on the driver (see the driver).
    future: Any

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
        outcome: tuple[bool, Any] = yield self
        return outcome

    def claim(self) -> Any:
        """(any thread) Take the right to step the run on; None if it was taken."""
        with _claim_lock:
            resume = self.resume
            self.resume = None
        return resume

    def deliver(self, outcome: tuple[bool, Any]) -> None:
        """(loop thread) Hand the outcome to the run, the first time only."""
        resume = self.claim()
        if resume is not None:
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
        self.abandoned = True
        self.deliver((False, RunCancelledSignal))


@types.coroutine
def park(run: Any, job: Job) -> Generator[Any, Any, Any]:
    """Await ``job`` as the body of ``run``; returns its value or raises its error.

    The one place a run is parked on a worker thread: ``run._cancel_hook`` is the
    job while it is out, so a cancel abandons just this call, and
    :class:`RunCancelledSignal` comes out. A generator, not a coroutine: a
    parked run keeps no more frames alive than ``await job`` would.
    """
    run._cancel_hook = job
    try:
        # Read after the hook is set: a cancel on another thread sees the hook,
        # or this sees its flag (or both).
        if run._cancel_requested:
            raise RunCancelledSignal
        ok, value = yield job
    finally:
        run._cancel_hook = None
    if ok:
        return value
    if value is RunCancelledSignal:
        raise RunCancelledSignal
    raise value


class _WorkerState:
    __slots__ = ("continuing", "deferred", "job", "next", "pool", "thread")

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.thread: threading.Thread | None = None
        self.job: Job | None = None
        #: The job this thread runs next, before looking at the queue.
        self.next: Job | None = None
        #: True while this thread steps a run on after its job (not inside user code).
        self.continuing = False
        #: Calls to make once the step is over: ``(fn, args)``.
        self.deferred: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()


def in_stepping_worker() -> bool:
    """True on a worker thread while it steps runs on (done callbacks run there)."""
    state = getattr(_local, "state", None)
    return state is not None and state.continuing


def continuing_worker(pool: WorkerPool) -> _WorkerState | None:
    """This thread's state when it is a worker of ``pool`` stepping a run on, else None."""
    state = getattr(_local, "state", None)
    if state is not None and state.continuing and state.pool is pool:
        return state  # type: ignore[no-any-return]
    return None


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
        """Queue a job (any thread); starts a thread if none is idle.

        A worker thread stepping a run on keeps the first job it makes for
        itself: it runs that one next, with no hand-off.
        """
        state = continuing_worker(self)
        if state is not None and state.next is None:
            state.next = job
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            if self._idle:
                self._idle -= 1
                start = False
            else:
                start = True
        if start:
            self._start_worker()  # first: a job is queued only when a thread will take it
        self._jobs.put(job)

    def _start_worker(self) -> None:
        """Start one more thread; :class:`WorkerStartFailed` when the system refuses."""
        state = _WorkerState(self)
        thread = threading.Thread(
            target=self._work, args=(state,), name=f"{self._name}-worker-{len(self._workers)}", daemon=True
        )
        state.thread = thread
        try:
            thread.start()
        except RuntimeError as exc:
            raise WorkerStartFailed(f"could not start a worker thread: {exc}") from exc
        with self._lock:
            self._workers.append(state)

    def _work(self, state: _WorkerState) -> None:
        _local.state = state
        get = self._jobs.get
        lock = self._lock
        wake = self._backend.call_soon_threadsafe
        drain = self._drain
        job = get()
        while job is not None:
            state.job = job
            if job.abandoned:  # cancelled before it started: do not call it at all
                outcome: tuple[bool, Any] = (False, RunCancelledSignal)
            else:
                try:
                    outcome = (True, job.context.run(job.fn, *job.args, **job.kwargs))
                except BaseException as exc:
                    outcome = (False, exc)
            state.job = None
            resume = job.claim()
            if resume is not None:
                run, coro = job.run, job.coro
                job.run = job.coro = None
                self._step_on(state, resume, run, coro, outcome)
                job, state.next = state.next, None
                if job is not None:
                    continue
                with lock:
                    self._idle += 1
            else:
                with lock:
                    self._idle += 1
                    if job.waiter is None:  # delivered already (the run was cancelled)
                        first = False
                    else:
                        done = self._done
                        done.append((job, outcome))
                        first = len(done) == 1
                if first:
                    try:
                        wake(drain)
                    except RuntimeError:  # the loop is gone; nobody is waiting any more
                        pass
            job = None  # not kept alive while this thread waits
            job = get()

    @staticmethod
    def _step_on(state: _WorkerState, resume: Any, run: Any, coro: Any, outcome: tuple[bool, Any]) -> None:
        """Step a run on from this worker thread, then make the calls that step deferred."""
        state.continuing = True
        deferred = state.deferred
        call: Any = resume
        args: tuple[Any, ...] = (run, coro, outcome)
        try:
            while True:
                try:
                    call(*args)
                except BaseException:  # the drivers let nothing out; keep the thread if one does
                    logging.getLogger("taskrun").exception("internal error while stepping a run on")
                if not deferred:
                    return
                call, args = deferred.popleft()
        finally:
            state.continuing = False

    def _drain(self) -> None:
        with self._lock:
            batch = self._done
            self._done = []
        for job, outcome in batch:
            try:
                job.deliver(outcome)
            except BaseException:  # the drivers let nothing out; the rest of the batch still goes
                logging.getLogger("taskrun").exception("internal error while delivering a job's outcome")

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
