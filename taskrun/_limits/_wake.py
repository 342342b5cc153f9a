"""One-shot wake-ups that any thread may fire: for a blocked thread, an asyncio task, a trio task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import sniffio


class ThreadWaker:
    """A blocked thread parks on a held lock; :meth:`wake` releases it."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        self._lock.release()

    def wait(self, timeout: float | None) -> bool:
        return self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))


def async_waker() -> tuple[Callable[[], None], Callable[[], Awaitable[object]]]:
    """``(wake, wait)`` for the current task's loop: ``wake`` is safe from any thread.

    ``wait`` is cancelled by the loop's own cancellation (anyio scopes work).
    """
    if sniffio.current_async_library() == "trio":
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        token = trio.lowlevel.current_trio_token()
        event = trio.Event()

        def wake_trio() -> None:
            try:
                token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass

        return wake_trio, event.wait

    loop = asyncio.get_running_loop()
    aevent = asyncio.Event()

    def wake_asyncio() -> None:
        try:
            loop.call_soon_threadsafe(aevent.set)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    return wake_asyncio, aevent.wait


def in_event_loop() -> bool:
    """True when this thread is running an asyncio or trio loop (blocking here would stall it)."""
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


def refuse_blocking_in_loop(what: str, async_form: str) -> RuntimeError:
    return RuntimeError(
        f"{what} would block this thread, which runs an event loop; "
        f"use `{async_form}` in async code (or call it from a worker thread)"
    )
