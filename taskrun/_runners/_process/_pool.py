"""A pool of worker processes that knows which call runs in which process.

``concurrent.futures.ProcessPoolExecutor`` fails *every* pending call, and kills
every worker, when one worker dies. This pool keeps one pipe per worker instead,
so a death costs only the call that was running in that process: it is reported
as :class:`WorkerProcessDied`, a replacement process is started, and the other
calls go on undisturbed.

One manager thread does all the pool's work: it starts workers (``spawn``; on
demand, at most ``max_workers``), pickles calls and sends them to idle workers,
reads outcomes and log records, notices deaths through process sentinels, and
kills workers whose abandoned call (cancelled, or timed out) did not return
within :data:`ABANDON_GRACE_SECONDS`. Other threads talk to it through
:meth:`ProcessPool.submit`, :meth:`ProcessPool.abandon` and
:meth:`ProcessPool.stop`; outcomes are handed to ``on_results`` in batches, one
batch per wake-up of the manager.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import wait as wait_for_objects
from typing import Any

from ..._core._backend import RunCancelledSignal
from .._remote import (
    RunSnapshot,
    attach_traceback,
    dumps,
    emit_records,
    loads,
    plain_values,
    unpicklable_parameter_error,
)
from ._worker import DONE, LOG, READY, worker_main

#: How long an abandoned call (its run was cancelled or timed out) may keep its
#: worker process busy before the process is killed and replaced.
ABANDON_GRACE_SECONDS = 2.0

#: Workers in a row that may die before they are ready, before queued calls are
#: failed instead of waiting for a worker that cannot start.
_START_FAILURES_ALLOWED = 3

Outcome = tuple[bool, Any]


class WorkerProcessDied(BaseException):
    """The worker process running a call died (killed, ``os._exit``, out of memory).

    A ``BaseException``, like ``SystemExit``: the engine ends the run ``Crashed``.
    """


class Call:
    """One body to run in a worker process; a thread waits for it with :meth:`ProcessPool.run`."""

    __slots__ = ("_done", "_outcome", "abandoned", "args", "kwargs", "snapshot", "task", "worker")

    def __init__(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 snapshot: RunSnapshot) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.snapshot = snapshot
        self.worker: _Worker | None = None
        self.abandoned = False
        self._outcome: Outcome | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def resolve(self, outcome: Outcome) -> None:
        """Record the outcome (the first one wins) and wake the waiting thread."""
        with _resolve_lock:
            if self._outcome is not None:
                return
            self._outcome = outcome
        self._done.release()

    def outcome(self) -> Outcome:
        """Block until the outcome is known."""
        self._done.acquire()
        self._done.release()
        assert self._outcome is not None
        return self._outcome


_resolve_lock = threading.Lock()


class _Worker:
    __slots__ = ("call", "conn", "index", "kill_at", "process", "ready")

    def __init__(self, index: int, process: Any, conn: Any) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.ready = False
        self.call: Call | None = None
        self.kill_at: float | None = None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessPool:
    """Worker processes for one runner; see the module docstring."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._max = max_workers
        self._name = name
        self._flags = self._ctx.RawArray("b", max_workers)
        self._free_indexes = list(range(max_workers - 1, -1, -1))
        self._workers: list[_Worker] = []
        self._pending: deque[Call] = deque()
        self._inbox: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._woken = False
        self._closed = False
        self._stopping = False
        self._start_failures = 0
        self._blobs: dict[int, tuple[Any, bytes]] = {}
        self._done: list[tuple[Call, Outcome]] = []
        self._thread = threading.Thread(target=self._main, name=f"{name}-manager", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ any thread

    def run(self, call: Call) -> Any:
        """Run ``call`` in a worker process and return its value (blocks this thread).

        Raises the body's exception (with the remote traceback as its
        ``__cause__``), :class:`WorkerProcessDied`, or ``RunCancelledSignal``
        once the call was abandoned.
        """
        self._post("submit", call)
        ok, value = call.outcome()
        if ok:
            return value
        raise value

    def abandon(self, call: Call) -> None:
        """Nobody waits for ``call`` any more: drop it, or flag it and start its grace period.

        The thread blocked in :meth:`run` returns at once.
        """
        with _resolve_lock:
            if call.abandoned or call._outcome is not None:  # over already
                return
            call.abandoned = True
        call.resolve((False, RunCancelledSignal))
        self._post("abandon", call)

    def stop(self) -> threading.Thread:
        """Stop the workers (idle ones at once, busy ones after the grace period).

        Returns the manager thread, to join; it ends once every worker is gone.
        """
        self._post("stop", None)
        return self._thread

    def _post(self, command: str, call: Call | None) -> None:
        with self._lock:
            if self._closed:
                if command == "submit" and call is not None:
                    call.resolve((False, WorkerProcessDied("the process pool is shut down")))
                return
            self._inbox.append((command, call))
            wake = not self._woken
            self._woken = True
        if wake:
            try:
                self._wake_w.send_bytes(b"")
            except (OSError, ValueError):  # the manager is gone; nothing is left to run
                pass

    # ------------------------------------------------------------------ manager thread

    def _main(self) -> None:
        try:
            while not (self._stopping and not self._workers):
                self._step()
        except BaseException:
            logging.getLogger("taskrun").exception("internal error in the process pool manager")
            raise
        finally:
            self._shut_down()

    def _step(self) -> None:
        waitables: list[Any] = [self._wake_r]
        for w in self._workers:
            waitables.append(w.conn)
            waitables.append(w.process.sentinel)
        ready = wait_for_objects(waitables, self._timeout())
        if self._wake_r in ready:
            self._take_commands()
        for w in list(self._workers):
            if w.conn in ready or w.process.sentinel in ready:
                self._read(w)
        self._kill_overdue()
        self._dispatch()
        self._flush()

    def _flush(self) -> None:
        batch, self._done = self._done, []
        for call, outcome in batch:
            call.resolve(outcome)

    def _timeout(self) -> float | None:
        deadlines = [w.kill_at for w in self._workers if w.kill_at is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _take_commands(self) -> None:
        while self._wake_r.poll():
            self._wake_r.recv_bytes()
        with self._lock:
            commands, self._inbox = self._inbox, []
            self._woken = False
        for command, call in commands:
            if command == "submit":
                assert call is not None
                if not call.abandoned:
                    self._pending.append(call)
            elif command == "abandon":
                assert call is not None
                self._abandon(call)
            else:
                self._begin_stop()

    def _abandon(self, call: Call) -> None:
        worker = call.worker
        if worker is None:
            try:
                self._pending.remove(call)
            except ValueError:
                pass
        elif worker.call is call:
            self._flags[worker.index] = 1
            if worker.kill_at is None:
                worker.kill_at = time.monotonic() + ABANDON_GRACE_SECONDS

    def _begin_stop(self) -> None:
        self._stopping = True
        while self._pending:
            self._done.append((self._pending.popleft(), (False, RunCancelledSignal)))
        deadline = time.monotonic() + ABANDON_GRACE_SECONDS
        for w in self._workers:
            if w.call is None:
                if w.ready:
                    self._send_stop(w)
                else:  # still starting, with nothing to do: no need to wait for it
                    w.process.kill()
            else:
                self._flags[w.index] = 1
                w.kill_at = min(w.kill_at or deadline, deadline)

    def _send_stop(self, w: _Worker) -> None:
        try:
            w.conn.send_bytes(b"")
        except OSError:  # dead already; its sentinel says so
            pass

    # ------------------------------------------------------------------ workers

    def _start_worker(self) -> None:
        index = self._free_indexes.pop()
        self._flags[index] = 0
        parent_conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_main, args=(child_conn, self._flags, index),
            name=f"{self._name}-worker-{index}", daemon=True,
        )
        try:
            process.start()
        except BaseException:
            self._free_indexes.append(index)
            parent_conn.close()
            raise
        finally:
            child_conn.close()
        self._workers.append(_Worker(index, process, parent_conn))

    def _read(self, w: _Worker) -> None:
        alive = True
        try:
            while w.conn.poll():
                data = w.conn.recv_bytes()
                self._message(w, data)
        except (EOFError, OSError):
            alive = False
        if not alive or w.process.exitcode is not None:
            self._reap(w)

    def _message(self, w: _Worker, data: bytes) -> None:
        kind, payload = data[:1], data[1:]
        if kind == LOG:
            emit_records([pickle.loads(payload)])
        elif kind == DONE:
            call, w.call, w.kill_at = w.call, None, None
            if call is not None and not call.abandoned:
                self._done.append((call, _decode(payload)))
            if self._stopping:
                self._send_stop(w)
        elif kind == READY:
            w.ready = True
            self._start_failures = 0
            if self._stopping:
                self._send_stop(w)

    def _reap(self, w: _Worker) -> None:
        w.process.join(1.0)
        self._workers.remove(w)
        self._free_indexes.append(w.index)
        w.conn.close()
        how = _describe_exit(w.process.exitcode)
        call = w.call
        if call is not None and not call.abandoned:
            self._done.append((call, (False, WorkerProcessDied(
                f"the worker process running it died (pid {w.process.pid}, {how})"
            ))))
        if not w.ready and not self._stopping:
            self._start_failures += 1
            if self._start_failures >= _START_FAILURES_ALLOWED:
                self._start_failures = 0
                error = WorkerProcessDied(
                    f"worker processes die while starting ({how}); their error output says why"
                )
                while self._pending:
                    self._done.append((self._pending.popleft(), (False, error)))

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for w in self._workers:
            if w.kill_at is not None and now >= w.kill_at:
                w.kill_at = None
                w.process.kill()

    def _dispatch(self) -> None:
        pending = self._pending
        if not pending:
            return
        for w in self._workers:
            if not pending:
                break
            if w.ready and w.call is None:
                self._send(w, pending)
        starting = sum(1 for w in self._workers if not w.ready)
        while not self._stopping and len(pending) > starting and len(self._workers) < self._max:
            self._start_worker()
            starting += 1

    def _send(self, w: _Worker, pending: deque[Call]) -> None:
        while pending:
            call = pending.popleft()
            try:
                data = self._encode(call)
            except Exception as exc:
                self._done.append((call, (False, exc)))
                continue
            self._flags[w.index] = 0
            w.call, call.worker = call, w
            try:
                w.conn.send_bytes(data)
            except OSError:  # the worker died: it never got the call, so try another
                w.call, call.worker = None, None
                w.ready = False
                pending.appendleft(call)
            return

    def _encode(self, call: Call) -> bytes:
        task = call.task
        cached = self._blobs.get(id(task))
        if cached is None or cached[0] is not task:
            try:
                blob = dumps(task, trim_tasks=True)
            except Exception as exc:
                raise TypeError(
                    f"task {task.name!r} cannot be pickled to reach a worker process "
                    f"({type(exc).__name__}: {exc}); define it at module level"
                ) from None
            self._blobs[id(task)] = (task, blob)
        else:
            blob = cached[1]
        try:
            if not call.args and plain_values(call.kwargs) and plain_values(call.snapshot.parameters):
                return pickle.dumps((blob, call.args, call.kwargs, call.snapshot), protocol=5)
            return dumps((blob, call.args, call.kwargs, call.snapshot))
        except Exception as exc:
            raise unpicklable_parameter_error(task.name, call.snapshot.parameters, exc) from None

    def _shut_down(self) -> None:
        """Last thing the manager does: nothing may be left waiting or running."""
        with self._lock:
            self._closed = True
            for command, call in self._inbox:
                if command == "submit" and call is not None:
                    self._pending.append(call)
            self._inbox = []
        for w in self._workers:
            if w.process.exitcode is None:
                w.process.kill()
        for w in self._workers:
            w.process.join()
            w.conn.close()
            call = w.call
            if call is not None and not call.abandoned:
                self._done.append((call, (False, WorkerProcessDied("the process pool shut down"))))
        self._workers.clear()
        while self._pending:
            self._done.append((self._pending.popleft(), (False, RunCancelledSignal)))
        try:
            self._flush()
        finally:
            self._wake_r.close()
            self._wake_w.close()


def _decode(payload: bytes) -> Outcome:
    try:
        outcome = loads(payload)
    except Exception as exc:
        return False, TypeError(f"the outcome of the call could not be unpickled here: {exc}")
    kind = outcome[0]
    if kind == "ok":
        return True, outcome[1]
    if kind == "cancelled":
        return False, RunCancelledSignal
    return False, attach_traceback(outcome[1], outcome[2])
