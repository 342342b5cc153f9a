"""The dispatcher: slots, the submission bridge, and the slot workers of one runner.

Lifecycle of a run inside the dispatcher (all of it on the loop thread, except
the thread-safe entry points named below)::

    submit_many ──(batch hand-off)──▶ accept ──▶ admit (engine: waits for inputs)
        ──▶ offer ──▶ [ready queue] ──▶ slot worker ──▶ execute (engine) ──▶ finished

A *slot* is the right to execute. ``limit`` slots exist; a slot worker holds one
and runs ready runs one after another, each inside its own context. A run blocked
on another future gives its slot back (:meth:`release`) and takes one again
(:meth:`reacquire`), ahead of runs that have not started, when it resumes.

Thread-safe: :meth:`submit_many`, :meth:`request_cancel`, :meth:`cancel_all`,
:meth:`release_threadsafe`, :meth:`reacquire_blocking`, :meth:`call_soon`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from ._backend import Backend, Waiter
from ._workers import Job, WorkerPool


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
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)


class _Resume:
    """A blocked run's place in the queue for a slot."""

    __slots__ = ("waiter", "granted")

    def __init__(self, waiter: Any) -> None:
        self.waiter = waiter
        self.granted = False

    def grant(self) -> None:
        self.granted = True
        self.waiter.set(None)


class _InContext:
    """Drive a coroutine inside a given :class:`contextvars.Context`.

    Each step of the wrapped coroutine runs in ``context``, so one slot worker can
    run many runs, each seeing its own context variables. Whatever the coroutine
    yields to the event loop is passed through unchanged, as are the values and
    exceptions the loop sends back.
    """

    __slots__ = ("_coro", "_context")

    def __init__(self, coro: Coroutine[Any, Any, Any], context: Any) -> None:
        self._coro = coro
        self._context = context

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        run = self._context.run
        try:
            signal = run(coro.send, None)
        except StopIteration as stop:
            return stop.value
        while True:
            try:
                value = yield signal
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # delivered by the loop (cancellation)
                try:
                    signal = run(coro.throw, exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    signal = run(coro.send, value)
                except StopIteration as stop:
                    return stop.value


Admit = Callable[["Dispatcher", Any], None]
Execute = Callable[["Dispatcher", Any], Coroutine[Any, Any, None]]


class Dispatcher:
    """Runs submitted runs on one loop with at most ``limit`` executing at once."""

    def __init__(self, backend: Backend, limit: int, name: str, admit: Admit, execute: Execute,
                 finish_cancelled: Callable[[Any], None]) -> None:
        self.backend = backend
        self.limit = limit
        self.active = 0
        self._ready: deque[Any] = deque()
        self._resuming: deque[_Resume] = deque()
        self._admit = admit
        self._execute = execute
        self._finish_cancelled = finish_cancelled
        self._spawner = backend.spawner()
        self.pool = WorkerPool(backend, name)
        self._inbox: list[Any] = []
        self._inbox_lock = threading.Lock()
        self._outstanding: set[Any] = set()
        self._idle_waiter: Waiter | None = None
        self.cancel_lock = threading.Lock()
        self.executor: Any = None
        self._open = False

    # ------------------------------------------------------------------ lifecycle (loop)

    async def open(self) -> None:
        await self._spawner.__aenter__()
        self._open = True

    async def close(self, failed: bool) -> list[threading.Thread]:
        """Wait for every run (cancelling them first if ``failed``); returns threads to join."""
        import anyio

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
            self._open = False
        # The nursery (trio) must be left in the scope it was entered in, so
        # outside the shield above; every run is over by now.
        await self._spawner.__aexit__(None, None, None)
        return self.pool.close()

    async def wait_idle(self) -> None:
        while self._outstanding or self._inbox:
            waiter = self._idle_waiter = self.backend.create_waiter()
            await waiter.wait()

    # ------------------------------------------------------------------ submission

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop: now if this is the loop thread, else soon."""
        if self.backend.is_loop_thread():
            fn(*args)
        else:
            self.backend.call_soon_threadsafe(fn, *args)

    def submit_many(self, runs: list[Any]) -> None:
        """Hand runs to the loop (any thread); one wake-up per batch."""
        if self.backend.is_loop_thread():
            self._accept(runs)
            return
        with self._inbox_lock:
            first = not self._inbox
            self._inbox.extend(runs)
        if first:
            self.backend.call_soon_threadsafe(self._drain_inbox)

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            runs, self._inbox = self._inbox, []
        self._accept(runs)

    def _accept(self, runs: list[Any]) -> None:
        add = self._outstanding.add
        admit = self._admit
        for run in runs:
            add(run)
            run._slots = self
            admit(self, run)

    def offer(self, run: Any) -> None:
        """A run whose inputs are ready: start it if a slot is free, else queue it."""
        if self.active < self.limit and not self._resuming:
            self.active += 1
            self._spawner.spawn(self._worker(run))
        else:
            self._ready.append(run)

    def finished(self, run: Any) -> None:
        """A run is over (final, or dropped after a cancel)."""
        self._outstanding.discard(run)
        if self._idle_waiter is not None and not self._outstanding and not self._inbox:
            waiter, self._idle_waiter = self._idle_waiter, None
            waiter.set(None)

    # ------------------------------------------------------------------ slot workers

    async def _worker(self, run: Any) -> None:
        execute = self._execute
        while run is not None:
            run._holds_slot = True
            try:
                await _InContext(execute(self, run), run._context)
            except BaseException:
                if run._holds_slot:
                    self.active -= 1
                    self._fill()
                raise
            finally:
                run._holds_slot = False
                self.finished(run)
            run = self._next()

    def _next(self) -> Any:
        if self._resuming:
            self._resuming.popleft().grant()
            return None
        if self._ready:
            return self._ready.popleft()
        self.active -= 1
        return None

    def _fill(self) -> None:
        while self.active < self.limit:
            if self._resuming:
                self.active += 1
                self._resuming.popleft().grant()
            elif self._ready:
                self.active += 1
                self._spawner.spawn(self._worker(self._ready.popleft()))
            else:
                break

    def release(self, holder: Any) -> None:
        """A run on this loop blocks on a future: free its slot."""
        holder._holds_slot = False
        self.active -= 1
        self._fill()

    def release_threadsafe(self, holder: Any) -> None:
        holder._holds_slot = False
        self.call_soon(self._release_slot)

    def _release_slot(self) -> None:
        self.active -= 1
        self._fill()

    async def reacquire(self, holder: Any) -> None:
        """Take a slot again after blocking, ahead of runs not started yet."""
        if self.active < self.limit and not self._resuming:
            self.active += 1
        else:
            entry = _Resume(self.backend.create_waiter())
            self._resuming.append(entry)
            try:
                await entry.waiter.wait()
            except BaseException:
                if entry.granted:
                    self.active -= 1
                    self._fill()
                else:
                    self._resuming.remove(entry)
                raise
        holder._holds_slot = True

    def reacquire_blocking(self, holder: Any) -> None:
        """The blocking twin of :meth:`reacquire`, for runs on worker threads."""
        waiter = ThreadWaiter()
        self.call_soon(self._reacquire_for, waiter)
        waiter.wait()
        holder._holds_slot = True

    def _reacquire_for(self, waiter: ThreadWaiter) -> None:
        if self.active < self.limit and not self._resuming:
            self.active += 1
            waiter.set()
        else:
            self._resuming.append(_Resume(waiter))

    def is_own_loop(self) -> bool:
        return self.backend.is_loop_thread()

    # ------------------------------------------------------------------ sync calls

    async def call_in_thread(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                             context: Any, on_job: Callable[[Job], None] | None = None) -> tuple[bool, Any]:
        """Run ``fn`` on a worker thread; returns ``(ok, value_or_exception)``."""
        job = Job(self.backend.create_waiter(), context, fn, args, kwargs)
        if on_job is not None:
            on_job(job)
        self.pool.put(job)
        try:
            return await job.waiter.wait()  # type: ignore[no-any-return]
        except BaseException:
            job.abandoned = True
            raise

    # ------------------------------------------------------------------ cancellation

    def request_cancel(self, run: Any) -> bool:
        """Cancel one run (any thread); False if it was final already."""
        with self.cancel_lock:
            if run.future._final:
                return False
            run._cancel_requested = True
            started = run._started
        if not started:
            self._finish_cancelled(run)
        else:
            self.call_soon(self._deliver_cancel, run)
        return True

    def _deliver_cancel(self, run: Any) -> None:
        hook = run._cancel_hook
        if hook is not None:
            hook()

    def cancel_all(self) -> None:
        """Cancel every run not yet final (any thread)."""
        with self._inbox_lock:
            pending = list(self._inbox)
        if self.backend.is_loop_thread():
            pending.extend(self._outstanding)
            for run in pending:
                self.request_cancel(run)
        else:
            for run in pending:
                self.request_cancel(run)
            self.call_soon(self.cancel_all)
