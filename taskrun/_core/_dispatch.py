"""The dispatcher: slots, the submission bridge, and the drivers of one runner's runs.

Lifecycle of a run inside the dispatcher::

    submit_many ──(batch hand-off)──▶ accept ──▶ admit (engine: waits for inputs)
        ──▶ offer ──▶ [ready queue] ──▶ driver ──▶ execute (engine coroutine) ──▶ finished

A single run submitted from another thread that waits for unfinished inputs
skips the hand-off: the engine's ``admit_submitted`` makes it wait for them on
the submitting thread, and it is offered where its last input finishes.

A *slot* is the right to execute; ``limit`` of them exist. A run blocked on
another future gives its slot back (:meth:`release`) and takes one again
(:meth:`reacquire`), ahead of runs that have not started, when it resumes.

Each run is a coroutine (the engine's ``execute``), stepped inside the run's own
:class:`contextvars.Context`, by one thread at a time. Two drivers step them:

- the *direct driver* (:meth:`_step`) steps a coroutine from a plain call. The
  engine parks a sync body on a worker thread by awaiting :class:`Job`; the
  direct driver hands the job to the pool, and the worker thread that ran the
  body steps the coroutine on itself (see ``_workers``): the run finishes
  there, and its slot passes to the next ready run, stepped there too. No
  asyncio task, future or wake-up is made per run.
- the *task driver* (:meth:`_task_driver`, or :class:`_AsyncioTaskDriver` on
  asyncio) steps coroutines inside a real loop task. A coroutine moves there
  when it awaits anything but :class:`Job` (an async body, a timeout scope, a
  retry delay) — the engine awaits :data:`PROMOTE` first wherever it needs a
  task. A task driver that finishes its run takes the next ready one, so tasks
  are reused across runs.

The first signal. A task driver is handed a run either new (``_START``; a run
the engine says ``needs_task``, an async body, is handed over not begun, so it
holds no engine coroutine until its task first steps) or from the direct
driver, which hands over exactly when the run yielded :data:`PROMOTE`: the
engine never awaits anything loop-bound before it has awaited ``PROMOTE``. So
the first signal a task driver sees carries nothing to pass on, and both
drivers answer it the same way: they step the run with ``None``.
:meth:`_spawn_driver` checks this once for both; a run that breaks it ends
``Crashed`` (an internal error) instead of handing a loop object to the wrong
task.

The body, handed over. On asyncio the engine's coroutine does not await an
untimed async body itself: it *returns* the body's coroutine, and the asyncio
task driver steps that body directly (so a waiting run holds no engine frame);
when the body returns or raises, the driver calls the engine's ``resume``,
which ends the run there or returns the coroutine that takes it on. Only the
asyncio task driver is ever handed a body (``Backend.direct_await``).

The engine is reached through one object, a :class:`~taskrun._core._seam.RunEngine`
made for this dispatcher; the run slots the core writes are declared on
:class:`~taskrun._core._seam.DispatchedRun`.

Threads: admission and task drivers run on the loop thread; the direct driver
runs there or on a worker thread. The slots, the ready and resuming queues and
the runs in flight are shared by them, under ``_lock``. No call is made while
holding that lock (a deque's ``+=`` instead of ``append``, say): the
interpreter switches threads only at calls and loop back-edges, and a thread
switched out holding a lock every worker needs stalls them all behind it —
measured, that turned a 20k-run map from ~9 to ~30 µs per run.

Thread-safe: :meth:`submit_many`, :meth:`request_cancel`, :meth:`cancel_all`,
:meth:`release_threadsafe`, :meth:`reacquire_blocking`, :meth:`call_soon`,
:meth:`schedule`, and everything the direct driver reaches.
"""

from __future__ import annotations

import collections.abc
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from types import CoroutineType as _COROUTINE
from typing import Any

import anyio

from .._limits._priority import ReadyQueue
from ._backend import RESCOPE, Backend, Waiter, is_cancellation, relay
from ._seam import RunEngine
from ._workers import Job, WorkerPool, continuing_worker, join_threads

#: The error of a submission to a runner that has closed (or is closing: its
#: dispatcher has seen its last run end and accepts no more).
CLOSED_MESSAGE = "Task runner is closed; use runner.duplicate() to get a fresh one with the same settings"


class ThreadWaiter:
    """A waiter a thread parks on; ``set`` may be called from any thread."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self, _: Any = None) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # set twice
            pass

    __call__ = set

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None or timeout >= threading.TIMEOUT_MAX:  # math.inf: for ever
            return self._lock.acquire()
        return self._lock.acquire(timeout=timeout)


class _Resume:
    """A blocked run's place in the queue for a slot."""

    __slots__ = ("granted", "waiter")

    def __init__(self, waiter: Any) -> None:
        self.waiter = waiter
        self.granted = False


class _Promote:
    """Awaited by the engine before code that must run inside a real loop task."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        yield self


PROMOTE = _Promote()


async def _nothing() -> None:
    return None
_START: Any = object()


class _AsyncioTaskDriver:
    """The task driver for asyncio, written as a coroutine object by hand.

    asyncio's task calls :meth:`send`/:meth:`throw` on it like on any coroutine;
    each call steps the current run (inside the run's context) and hands back
    what the run yields, so a waiting run costs no driver frame at all. A
    :class:`Job` becomes a loop future the task waits on; when the run ends the
    driver takes the next ready run, and stops when there is none.
    """

    # Four slots, 64 bytes a waiting run: the dispatcher is the run's own
    # (``run.dispatcher``), and the loop future a job's outcome comes back on is
    # kept on the job.
    __slots__ = ("_body", "_coro", "_job", "_run")

    def __init__(self, dispatcher: Dispatcher, run: Any, coro: Coroutine[Any, Any, Any] | None) -> None:
        assert run.dispatcher is dispatcher
        self._run = run
        #: None for a run not begun yet (the driver begins it on its first step).
        self._coro: Coroutine[Any, Any, Any] | None = coro
        #: True while ``_coro`` is the run's body, handed over by the engine's
        #: coroutine (it returned it): when it ends, the engine's ``resume`` goes on.
        self._body = False
        self._job: Job | None = None
        run._in_task = True

    def __await__(self) -> Any:
        return self

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self._advance(None, None)

    def send(self, value: Any) -> Any:
        return self._advance(value, None)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if isinstance(typ, BaseException):
            error = typ
        else:
            error = typ() if val is None else (val if isinstance(val, BaseException) else typ(val))
        return self._advance(None, error)

    def close(self) -> None:
        coro, self._coro = self._coro, None
        if coro is not None:
            coro.close()

    def _advance(self, value: Any, error: BaseException | None) -> Any:
        dispatcher: Dispatcher = self._run.dispatcher  # every run a driver steps is its dispatcher's
        while True:
            job = self._job
            if job is not None:
                self._job = None
                if error is None:
                    value = job.future.result()
                else:
                    job.abandoned = True
            run = self._run
            coro = self._coro
            ended: BaseException | None = None
            try:
                if coro is None:  # a run handed over unbegun (see "The first signal")
                    if error is not None:  # the task was cancelled before its first step
                        if is_cancellation(error):
                            dispatcher.engine.cancelled_before_start(run)
                        raise error
                    coro = self._coro = dispatcher._begin(run)
                if error is None:
                    signal = run._context.run(coro.send, value)
                else:
                    signal = run._context.run(coro.throw, error)
            except StopIteration as stop:
                if not self._body:
                    result = stop.value
                    if type(result) is _COROUTINE:  # the engine handed over the body: step it here
                        self._coro = result
                        self._body = True
                        value = error = None
                        continue
                else:  # the body returned: the engine takes the run on
                    self._body = False
                    try:
                        coro = self._coro = run._context.run(dispatcher._resume, run, stop.value, None)
                    except BaseException as exc:
                        ended = exc
                    else:
                        if coro is not None:
                            value = error = None
                            continue
            except BaseException as exc:
                if not self._body:
                    ended = exc
                else:  # the body raised: the engine takes the run on
                    self._body = False
                    exc.__traceback__ = exc.__traceback__.tb_next  # type: ignore[union-attr]  # from the body's frame on
                    try:
                        coro = self._coro = run._context.run(dispatcher._resume, run, None, exc)
                    except BaseException as exc2:
                        ended = exc2
                    else:
                        if coro is not None:
                            value = error = None
                            continue
            else:
                if signal is PROMOTE:
                    value = error = None
                    continue
                if type(signal) is Job:
                    job = self._job = signal
                    job.waiter = waiter = dispatcher.backend.create_waiter()
                    try:
                        dispatcher.pool.put(job)
                    except BaseException as exc:  # no thread for it: the attempt's outcome
                        self._job = None
                        value, error = None, exc
                        continue
                    future = job.future = waiter._future  # type: ignore[attr-defined]
                    future._asyncio_future_blocking = True
                    return future
                return signal
            nxt = dispatcher._end(run, ended)
            if ended is not None and is_cancellation(ended):
                self._coro = None
                dispatcher._driver_done()
                raise ended
            if nxt is not None:
                try:  # _begin_next, its common case inlined
                    coro = dispatcher._begin(nxt)
                except BaseException as exc:
                    nxt, coro = dispatcher._begin_next(dispatcher._end(nxt, exc))
            if nxt is None:
                self._coro = None
                dispatcher._driver_done()
                raise StopIteration
            nxt._in_task = True
            self._run = nxt
            self._coro = coro
            value = error = None


collections.abc.Coroutine.register(_AsyncioTaskDriver)


class _RunList:
    """The runs in flight, linked through their own ``_prev``/``_next`` slots.

    Adding (a batch at a time) and removing cost O(1) a run, and nothing per run beyond two slots (a set
    costs ~100 bytes per entry at this size). Any thread may add and remove:
    each change is made under ``lock`` and makes no call while holding it (see
    the module docstring).
    """

    __slots__ = ("_len", "_lock", "_next", "_prev")

    def __init__(self, lock: threading.Lock) -> None:
        self._prev: Any = self
        self._next: Any = self
        self._len = 0
        self._lock = lock

    def __bool__(self) -> bool:
        return self._len > 0

    def __len__(self) -> int:
        return self._len

    def extend(self, runs: list[Any]) -> None:
        """Add new runs (those already in are skipped): chained outside the lock
        (no other thread sees them before they are in), spliced in under it with
        no loop."""
        first: Any = None
        last: Any = None
        added = 0
        for run in runs:
            if run._prev is None and run is not first:
                if last is None:
                    first = run
                else:
                    last._next = run
                    run._prev = last
                last = run
                added += 1
        if first is None:
            return
        with self._lock:
            tail = self._prev
            tail._next = first
            first._prev = tail
            last._next = self
            self._prev = last
            self._len += added

    def remove(self, run: Any) -> None:
        with self._lock:
            prev = run._prev
            if prev is not None:
                nxt = run._next
                prev._next = nxt
                nxt._prev = prev
                run._prev = run._next = None
                self._len -= 1

    def snapshot(self) -> list[Any]:
        with self._lock:
            runs = []
            node = self._next
            while node is not self:
                runs.append(node)
                node = node._next
        return runs


class Dispatcher:
    """Runs submitted runs on one loop with at most ``limit`` executing at once."""

    def __init__(self, backend: Backend, limit: int, name: str,
                 engine_for: Callable[[Dispatcher], RunEngine]) -> None:
        self.backend = backend
        self.limit = limit
        self.active = 0
        #: A deque, until a run with a priority comes (then a ReadyQueue: :meth:`use_priorities`).
        self._ready: Any = deque()
        self._ordered = False
        self._resuming: deque[_Resume] = deque()
        self.engine = engine = engine_for(self)
        # Bound once: these are called for every run.
        self._admit_many = engine.admit_many
        self._admit_submitted = engine.admit_submitted
        self._start_run = engine.start
        self._resume = engine.resume
        self._needs_task = engine.needs_task
        self._release_final = engine.release_final
        self._spawner = backend.spawner()
        self.pool = WorkerPool(backend, name)
        self._inbox: list[Any] = []
        self._inbox_lock = threading.Lock()
        #: True once closing began: only runs of this dispatcher may submit more.
        self._closing = False
        #: False once the last run ended while closing; written under both locks.
        self._accepting = True
        self._idle_waiter: Waiter | None = None
        self._drivers = 0
        self._drivers_waiter: Waiter | None = None
        self.cancel_lock = threading.Lock()
        #: Guards the slots, the ready and resuming queues, the runs in flight and
        #: the idle waiter: worker threads step runs on too (see the module doc).
        self._lock = threading.Lock()
        self._outstanding = _RunList(self._lock)

    # ------------------------------------------------------------------ lifecycle (loop)

    async def open(self) -> None:
        await self._spawner.__aenter__()

    async def close(self, failed: bool) -> list[threading.Thread]:
        """Wait for every run (cancelling them first if ``failed``); returns threads to join."""
        with self._inbox_lock:
            self._closing = True
        with anyio.CancelScope(shield=True):
            if failed:
                self.cancel_all()
            while True:
                try:
                    await self.wait_idle()
                    break
                except BaseException:
                    self.cancel_all()
                    raise
            while self._drivers:
                waiter = self._drivers_waiter = self.backend.create_waiter()
                await waiter.wait()
            threads = self.pool.close()  # every run is over: no job comes any more
        # The nursery (trio) must be left in the scope it was entered in, so
        # outside the shield above.
        try:
            await self._spawner.__aexit__(None, None, None)
        except BaseException:  # a cancelled host: the caller will not join them
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(join_threads, threads)
            raise
        return threads

    async def wait_idle(self) -> None:
        """Wait until no run is in flight; from then on, submissions are refused
        (a batch handed over later would never be drained)."""
        while True:
            with self._lock:
                if not self._outstanding:
                    with self._inbox_lock:
                        if not self._inbox:
                            self._accepting = False
                            return
                waiter = self._idle_waiter = self.backend.create_waiter()
            await waiter.wait()

    def _wake(self, waiter: Any) -> None:
        """Set a waiter from whichever thread this is (loop waiters only on their loop)."""
        if type(waiter) is ThreadWaiter or self.backend.is_loop_thread():
            waiter.set(None)
        else:
            self.backend.call_soon_threadsafe(waiter.set, None)

    def schedule(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` soon, not inside the current step: on a later loop turn,
        or, on a worker thread stepping a run on, once that step is over."""
        worker = continuing_worker(self.pool)  # first: a chain's links are re-admitted there
        if worker is not None:
            worker.deferred.append((fn, args))
        elif self.backend.is_loop_thread():
            self.backend.defer(fn, *args)
        else:
            self.backend.call_soon_threadsafe(fn, *args)

    # ------------------------------------------------------------------ submission

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop: now if this is the loop thread, else soon."""
        if self.backend.is_loop_thread():
            fn(*args)
        else:
            self.backend.call_soon_threadsafe(fn, *args)

    def submit_many(self, runs: list[Any], nested: bool = False) -> None:
        """Hand runs to the loop (any thread); one wake-up per batch, none for a
        single run the engine lets wait for its inputs here (``admit_submitted``).

        Once closing began, only a run of this dispatcher (``nested``) may still
        submit, until the last run ends: anyone else gets the closed error at
        once, so that the close is not kept waiting for ever.
        """
        if self.backend.is_loop_thread():
            if not self._accepting or (self._closing and not nested):
                raise RuntimeError(CLOSED_MESSAGE)
            self._accept(runs)
            return
        if len(runs) == 1 and self._admit_submitted(runs[0], self._enter_nested if nested else self._enter):
            return
        with self._inbox_lock:
            if not self._accepting or (self._closing and not nested):
                raise RuntimeError(CLOSED_MESSAGE)
            first = not self._inbox
            self._inbox.extend(runs)
        if first:
            self.backend.call_soon_threadsafe(self._drain_inbox)

    def _enter(self, run: Any, nested: bool = False) -> None:
        """(any thread) Count one run in flight, as :meth:`_accept` does, unless this
        dispatcher accepts no more runs (see :meth:`submit_many`).

        Checked under ``_lock``, where :meth:`wait_idle` stops accepting: either it
        sees this run in flight, or this sees it stopped.
        """
        runs = self._outstanding
        with self._lock:  # _RunList.extend for one run, inlined: no call under the lock
            if self._accepting and (nested or not self._closing):
                tail = runs._prev
                tail._next = run
                run._prev = tail
                run._next = runs
                runs._prev = run
                runs._len += 1
                return
        raise RuntimeError(CLOSED_MESSAGE)

    def _enter_nested(self, run: Any) -> None:
        self._enter(run, True)

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            runs, self._inbox = self._inbox, []
        self._accept(runs)

    def _accept(self, runs: list[Any]) -> None:
        self._outstanding.extend(runs)
        self.offer_many(self._admit_many(runs))

    def use_priorities(self) -> None:
        """From now on, ready runs are taken by ``_priority`` (higher first), FIFO among equals."""
        with self._lock:
            if self._ordered:
                return
            # _end pops the deque without the lock: flag first, then move the
            # runs one atomic popleft at a time, so each run moves exactly once.
            self._ordered = True
            old, ordered = self._ready, ReadyQueue[Any]()
            while old:
                try:
                    ordered.push(old.popleft())
                except IndexError:
                    break
            self._ready = ordered

    def offer_many(self, runs: list[Any]) -> None:
        """Runs whose inputs are ready, in order: start as many as slots allow, queue the rest."""
        if self._ordered:
            with self._lock:
                self._ready.extend(runs)
            self._fill()
            return
        with self._lock:
            if self._ready or self._resuming:
                self._ready.extend(runs)
                start: list[Any] = []
            else:
                free = max(0, min(self.limit - self.active, len(runs)))
                self.active += free
                start = runs[:free]
                self._ready.extend(runs[free:])
        for run in start:
            self._start(run)

    def offer(self, run: Any) -> None:
        """A run whose inputs are ready: start it if a slot is free, else queue it."""
        with self._lock:
            if self.active >= self.limit or self._resuming:
                self._ready += (run,)  # no call under the lock (see the module doc)
                return
            self.active += 1
        run._holds_slot = True  # _start, inlined: every re-admitted link comes here
        self._step(run, None, _START)

    def finished(self, run: Any) -> None:
        """A run is over (final, or dropped after a cancel).

        The run lets go of its future and its context: both refer back to it, and
        without these cycles a finished run is freed as soon as its future is,
        instead of waiting for the cyclic garbage collector.
        """
        if run._started and self._release_final(run):
            run._context = None
        self._outstanding.remove(run)
        # Read without the lock: wait_idle sets the waiter and looks at the runs
        # in flight under the lock, so either it saw this run gone or this sees it.
        if self._idle_waiter is None:
            return
        with self._lock:
            waiter = self._idle_waiter
            if waiter is None or self._outstanding._len or self._inbox:
                return
            self._idle_waiter = None
        self._wake(waiter)

    # ------------------------------------------------------------------ drivers

    def _start(self, run: Any) -> None:
        run._holds_slot = True
        self._step(run, None, _START)

    def _begin_next(self, run: Any) -> tuple[Any, Any]:
        """``(run, its coroutine)`` for a run the slot passed to, or ``(None, None)``.

        A run that cannot begin ends ``Crashed``, and the slot passes on again.
        """
        while run is not None:
            try:
                return run, self._begin(run)
            except BaseException as exc:
                run = self._end(run, exc)
        return None, None

    def _begin(self, run: Any) -> Coroutine[Any, Any, Any]:
        """The coroutine of a run about to start (a no-op one if it was cancelled)."""
        run._context = context = run._context.copy()  # the run's own, from the shared snapshot
        with self.cancel_lock:
            cancelled = run._cancel_requested
            if not cancelled:
                run._started = True
        if cancelled:
            return _nothing()
        coro: Coroutine[Any, Any, Any] = context.run(self._start_run, run)
        return coro

    def _step(self, run: Any, coro: Coroutine[Any, Any, Any] | None, value: Any) -> None:
        """The direct driver: step ``coro`` (beginning the run first when None) until
        it parks, moves to a task, or ends.

        When it ends, the slot goes to the next ready run, stepped here too.
        Nothing raised on the way strands a run: an error beginning it or handing
        it on ends it ``Crashed``; a job no thread can take fails its attempt.
        """
        while True:
            error: BaseException | None = None
            try:
                if coro is None and self._needs_task(run):
                    signal = _START  # handed to a task driver unbegun (see "The first signal")
                else:
                    if coro is None:
                        coro = self._begin(run)
                    signal = run._context.run(coro.send, None if value is _START else value)
            except StopIteration:
                pass
            except BaseException as exc:  # the engine never lets one out; be safe if it does
                error = exc
            else:
                if type(signal) is Job:
                    signal.run = run
                    signal.coro = coro
                    signal.resume = self._step  # last: a cancel may claim the job from now on
                    try:
                        self.pool.put(signal)
                        return
                    except BaseException as exc:  # no thread for it: the attempt's outcome
                        if signal.claim() is None:  # a cancel stepped the run on meanwhile
                            return
                        signal.run = signal.coro = None
                        value = (False, exc)
                        continue
                try:
                    if self.backend.is_loop_thread():
                        self._spawn_driver(run, coro, signal)
                    else:  # a worker thread stepping a run on: tasks live on the loop
                        self.backend.call_soon_threadsafe(self._spawn_driver, run, coro, signal)
                    return
                except BaseException as exc:
                    error = exc
            run = self._end(run, error)
            if run is None:
                return
            coro, value = None, _START

    def _spawn_driver(self, run: Any, coro: Coroutine[Any, Any, Any] | None, signal: Any) -> None:
        driver: Any = None
        if signal is not PROMOTE and signal is not _START:  # see "The first signal" above
            assert coro is not None
            coro.close()
            error: BaseException = RuntimeError(
                f"internal error: a run handed to a task driver yielded {signal!r}")
        else:
            self._drivers += 1
            try:
                if self.backend.direct_await:
                    driver = _AsyncioTaskDriver(self, run, coro)
                else:
                    driver = self._task_driver(run, coro)
                self._spawner.spawn(driver)
                return
            except BaseException as exc:  # the run ends; it is not left in no one's hands
                self._driver_done()
                error = exc
        run = self._end(run, error)
        if driver is not None:
            driver.close()
        if run is not None:
            self._step(run, None, _START)

    def _driver_done(self) -> None:
        self._drivers -= 1
        if not self._drivers and self._drivers_waiter is not None:
            waiter, self._drivers_waiter = self._drivers_waiter, None
            waiter.set(None)

    async def _task_driver(self, run: Any, coro: Coroutine[Any, Any, Any] | None) -> None:
        """The task driver (any backend but asyncio's): step runs inside this task,
        one after another, under one host cancel scope (see :func:`_host_runs`);
        ``coro`` is None for a run not begun yet."""
        signal: Any = _START
        try:
            if coro is None:
                run, coro = self._begin_next(run)
            while run is not None:
                with self.backend.host_scope() as host:
                    run, coro, signal = await self._host_runs(host, run, coro, signal)
        finally:
            self._driver_done()

    async def _host_runs(self, host: Any, run: Any, coro: Coroutine[Any, Any, Any],
                         signal: Any) -> tuple[Any, Any, Any]:
        """Step runs under ``host`` until none is left (``None, None, None``), or a
        run awaits :data:`RESCOPE` (that run, its coroutine, and PROMOTE: step it
        on with ``None``, under a fresh scope).

        ``host`` is the cancel scope a run's cancel cancels while its async body
        is awaited right in the engine's frame (``run._host``): one scope serves
        every run of the task until one of them is cancelled, instead of a scope
        entered and left per run.
        """
        backend = self.backend
        while run is not None:
            run._in_task = True
            run._host = host
            context_run = run._context.run
            ended: BaseException | None = None
            while True:
                value: Any = None
                error: BaseException | None = None
                if signal is _START or signal is PROMOTE:
                    pass
                elif signal is RESCOPE:
                    return run, coro, PROMOTE
                elif type(signal) is Job:
                    job = signal
                    job.waiter = backend.create_waiter()
                    try:
                        self.pool.put(job)
                    except BaseException as exc:  # no thread for it: the attempt's outcome
                        error = exc
                    else:
                        try:
                            value = await job.waiter.wait()
                        except BaseException as exc:
                            job.abandoned = True
                            error = exc
                else:
                    try:
                        value = await relay(signal)
                    except BaseException as exc:
                        error = exc
                try:
                    if error is None:
                        signal = context_run(coro.send, value)
                    else:
                        signal = context_run(coro.throw, error)
                except StopIteration:
                    break
                except BaseException as exc:
                    ended = exc
                    break
            run._host = None
            run = self._end(run, ended)
            if ended is not None and is_cancellation(ended):
                raise ended
            run, coro = self._begin_next(run)
            signal = _START
            if run is not None and host.cancel_called:  # (a cancel that was never taken back)
                return run, coro, signal
        return None, None, None

    def _end(self, run: Any, error: BaseException | None) -> Any:
        """Book a run's end; returns the next ready run when the slot passes to it."""
        held = run._holds_slot
        run._holds_slot = False
        if error is not None and not is_cancellation(error):
            self.engine.crashed(run, error)
        self.finished(run)
        if not held:
            return None
        # A driver being cancelled takes no next run itself; the slot still goes
        # to whoever waits for one, through _fill (a resuming run first).
        # (An empty deque is seen before popleft raises: a chain's link finds none.)
        if not self._resuming and (self._ordered or self._ready) and (
                error is None or not is_cancellation(error)):
            try:
                if self._ordered:  # a heap, not a deque: popped under the lock
                    with self._lock:
                        nxt = self._ready.popleft()
                else:
                    nxt = self._ready.popleft()  # atomic: the slot passes straight to it
            except IndexError:
                pass
            else:
                nxt._holds_slot = True
                return nxt
        self._fill(1)
        return None

    def _fill(self, freed: int = 0) -> None:
        """Give free slots (after ``freed`` more were given back) to waiting runs."""
        while True:
            entry = run = None
            with self._lock:
                self.active -= freed
                freed = 0
                if self.active >= self.limit:
                    return
                if self._resuming:
                    entry = self._resuming.popleft()
                    entry.granted = True
                elif self._ready:
                    run = self._ready.popleft()
                else:
                    return
                self.active += 1
            if entry is not None:
                self._wake(entry.waiter)
            else:
                self._start(run)

    def release(self, holder: Any) -> None:
        """A run on this loop blocks on a future: free its slot."""
        holder._holds_slot = False
        self._fill(1)

    def release_threadsafe(self, holder: Any) -> None:
        holder._holds_slot = False
        self.call_soon(self._fill, 1)

    async def reacquire(self, holder: Any) -> None:
        """Take a slot again after blocking, ahead of runs not started yet."""
        with self._lock:
            if self.active < self.limit and not self._resuming:
                self.active += 1
                entry = None
            else:
                entry = _Resume(self.backend.create_waiter())
                self._resuming.append(entry)
        if entry is not None:
            try:
                await entry.waiter.wait()
            except BaseException:
                with self._lock:
                    granted = entry.granted
                    if not granted:
                        self._resuming.remove(entry)
                if granted:
                    self._fill(1)
                raise
        holder._holds_slot = True

    def reacquire_blocking(self, holder: Any) -> None:
        """The blocking twin of :meth:`reacquire`, for runs on worker threads."""
        waiter = ThreadWaiter()
        self.call_soon(self._reacquire_for, waiter)
        waiter.wait()
        holder._holds_slot = True

    def _reacquire_for(self, waiter: ThreadWaiter) -> None:
        with self._lock:
            if self.active >= self.limit or self._resuming:
                self._resuming.append(_Resume(waiter))
                return
            self.active += 1
        waiter.set()

    def is_own_loop(self) -> bool:
        return self.backend.is_loop_thread()

    # ------------------------------------------------------------------ cancellation

    def request_cancel(self, run: Any) -> bool:
        """Cancel one run (any thread); False if it was final already."""
        started = self._mark_cancelled(run)
        if started is None:
            return False
        self._stop_cancelled(run, started)
        return True

    def _mark_cancelled(self, run: Any) -> bool | None:
        """Flag a run as cancelled; whether it had started, or None if it was final."""
        with self.cancel_lock:
            if self.engine.is_final(run):
                return None
            run._cancel_requested = True
            return bool(run._started)

    def _stop_cancelled(self, run: Any, started: bool) -> None:
        if not started:
            self.engine.cancelled_before_start(run)
            # It no longer counts as in flight, wherever it waits (inbox, inputs,
            # ready queue); when it is reached there, it is skipped.
            self.call_soon(self.finished, run)
        else:
            self.call_soon(self._deliver_cancel, run)

    def _deliver_cancel(self, run: Any) -> None:
        # Whatever runs the run right now (a job, a task, a cancel scope) sits in
        # ``_cancel_hook``; each has a ``cancel()`` that stops just this run.
        hook = run._cancel_hook
        if hook is not None:
            run._cancel_delivered = True
            hook.cancel()

    def cancel_all(self) -> None:
        """Cancel every run not yet final (any thread).

        Every run is flagged before any is stopped, so a slot freed by one
        cancelled run never starts another run that is being cancelled.
        """
        with self._inbox_lock:
            pending = list(self._inbox)
        on_loop = self.backend.is_loop_thread()
        if on_loop:
            pending.extend(self._outstanding.snapshot())
        flagged = [(run, self._mark_cancelled(run)) for run in pending]
        for run, started in flagged:
            if started is not None:
                self._stop_cancelled(run, started)
        if not on_loop and self._accepting:  # else no run is left, and the loop may be gone
            self.call_soon(self.cancel_all)
