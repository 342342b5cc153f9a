"""The inside of a process pool worker: receive a call, run the body, send the outcome.

Protocol on the worker's pipe (every message is one ``send_bytes``):

- parent -> worker: a pickled call ``(task_blob, args, kwargs, snapshot)``, or
  ``b""`` to stop;
- worker -> parent: :data:`READY` once started (after the pool's initializer),
  :data:`LOG` + a pickled log record while a body runs, :data:`DONE` + a pickled
  outcome when it returns, or :data:`INIT_FAILED` + a pickled ``("error", ...)``
  outcome when the initializer raised (then the worker exits).

Outcomes: ``("ok", value)``, ``("error", exc, traceback_text)`` for an
``Exception``, ``("crash", exc, traceback_text)`` for another ``BaseException``
(``SystemExit`` and friends), ``("cancelled",)`` for an async body stopped by the
cancel flag.

The cancel flag of a worker is one byte of shared memory the parent sets when
the run is cancelled or its attempt timed out; ``get_run_context()
.cancel_requested()`` reads it, and an async body is cancelled when it turns on.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .._remote import (
    capture_logs,
    dumps,
    install_capture,
    loads,
    pack_exception,
    rebuild_run,
    unpicklable_result_error,
)

READY = b"R"
LOG = b"L"
DONE = b"D"
INIT_FAILED = b"I"

#: Exit status of a worker whose main script, re-imported, entered a process pool
#: runner itself: the script has no ``if __name__ == "__main__":`` guard.
EXIT_NO_MAIN_GUARD = 86

_TASK_CACHE_SIZE = 128
_FLAG_POLL_SECONDS = 0.05


_PARENT_POLL_SECONDS = 0.2


def _exit_with_parent() -> None:
    """Exit within ~0.2 s of the parent's death (SIGKILL gives it no chance to stop us).

    The worker is re-parented when its parent dies, so a change of ``getppid()``
    is the signal; a thread polls it, since a body may be busy for a long time.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="taskrun-parent-watch", daemon=True).start()


def worker_main(conn: Any, flags: Any, index: int, initializer: bytes | None = None) -> None:
    """Entry point of a worker process (spawned by :class:`~taskrun._process_pool.ProcessPool`).

    ``initializer`` is the pickled ``(initializer, initargs)`` of the pool, if any.
    """
    # Ctrl-C reaches the whole process group; the parent decides what to cancel.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    worker = _Worker(conn, lambda: flags[index] != 0)
    if initializer is None or worker.initialize(initializer):
        worker.serve()
    # Told to stop (or the parent is gone): nothing of this process is needed
    # any more, so skip the interpreter's slow teardown.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)


class _Worker:
    def __init__(self, conn: Any, cancelled: Callable[[], bool]) -> None:
        self._conn = conn
        self._cancelled = cancelled
        self._send_lock = threading.Lock()
        self._tasks: dict[bytes, Any] = {}

    def _send(self, kind: bytes, payload: bytes = b"") -> None:
        with self._send_lock:
            self._conn.send_bytes(kind + payload)

    def _send_log(self, record: dict[str, Any]) -> None:
        self._send(LOG, pickle.dumps(record))

    def initialize(self, blob: bytes) -> bool:
        """Run the pool's initializer; on failure tell the parent and return False."""
        try:
            initializer, initargs = loads(blob)
            initializer(*initargs)
        except BaseException as exc:
            try:
                self._send(INIT_FAILED, _error(exc))
            except OSError:  # the parent is gone
                pass
            return False
        return True

    def serve(self) -> None:
        install_capture()
        self._send(READY)
        while True:
            try:
                data = self._conn.recv_bytes()
            except (EOFError, OSError):  # the parent is gone
                return
            if not data:
                return
            self._send(DONE, self._run(data))

    def _task(self, blob: bytes) -> Any:
        task = self._tasks.get(blob)
        if task is None:
            if len(self._tasks) >= _TASK_CACHE_SIZE:
                self._tasks.clear()
            task = self._tasks[blob] = loads(blob)
        return task

    def _run(self, data: bytes) -> bytes:
        try:
            blob, args, kwargs, snap = loads(data)
            task = self._task(blob)
        except BaseException as exc:
            return _error(exc)
        run, context = rebuild_run(task, snap, self._cancelled)
        capture_logs(context, self._send_log)
        try:
            if task.isasync:
                value = context.run(asyncio.run, _until_cancelled(task.fn(*args, **kwargs), self._cancelled))
            else:
                value = context.run(task.fn, *args, **kwargs)
        except asyncio.CancelledError:
            return pickle.dumps(("cancelled",))
        except BaseException as exc:
            return _error(exc)
        try:
            return dumps(("ok", value))
        except Exception as exc:
            return _error(unpicklable_result_error(run.task_run_name, exc), with_traceback=False)


def _error(exc: BaseException, with_traceback: bool = True) -> bytes:
    kind = "error" if isinstance(exc, Exception) else "crash"
    packed, text = pack_exception(exc)
    return dumps((kind, packed, text if with_traceback else None))


async def _until_cancelled(coro: Coroutine[Any, Any, Any], cancelled: Callable[[], bool]) -> Any:
    """Await ``coro``, cancelling it when the parent turns the run's cancel flag on."""
    task = asyncio.ensure_future(coro)
    while True:
        done, _ = await asyncio.wait({task}, timeout=_FLAG_POLL_SECONDS)
        if done:
            return task.result()
        if cancelled():
            task.cancel()
            return await task
